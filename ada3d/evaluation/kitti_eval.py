"""The official KITTI object-detection metric: AP of 2D boxes, bird's-eye view, 3D boxes and AOS.

The protocol of the KITTI devkit (``evaluate_object.cpp``), with the 11- and 40-recall-point APs and the
two overlap sets that mmdetection3d and OpenPCDet print:

* difficulties easy / moderate / hard: ground truth at least 40 / 25 / 25 px tall in the image (strictly
  taller), occlusion at most 0 / 1 / 2, truncation at most 0.15 / 0.30 / 0.50; harder ground truth is
  ignored (neither TP nor FN), so moderate includes the easy objects. Detections below the minimum height
  are ignored (neither TP nor FP).
* neighbouring classes: Van ground truth for Car and Person_sitting for Pedestrian is ignored, so a Car
  detection on a Van is neither TP nor FP; a Van is not a missed Car.
* DontCare regions: a detection left unmatched whose 2D box lies in a DontCare region (intersection over
  the detection's area above the overlap threshold) is not a false positive (2D and AOS; DontCare labels
  carry no 3D box, so BEV and 3D are unaffected, as in the devkit).
* overlap thresholds ("strict", the official ones): Car 0.7, Pedestrian / Cyclist 0.5 for 2D, BEV and 3D;
  "loose": Car 0.7 / 0.5 / 0.5, Pedestrian and Cyclist 0.5 / 0.25 / 0.25 (2D / BEV / 3D).
* precision is sampled at up to 41 score thresholds chosen so recall steps by 1/40; it is made monotone
  (each point the maximum precision at equal or higher recall); AP11 averages points 0, 4, ..., 40 (recall
  0, 0.1, ..., 1), AP40 points 1..40 (recall 1/40 .. 1, the official measure since 2019). AOS replaces
  precision by the orientation similarity ``sum_TP (1 + cos(delta alpha)) / 2 / (TP + FP)``.
* BEV IoU: rotated rectangles on the camera x-z plane; 3D IoU: their intersection times the overlap of the
  height ranges, over the union of the volumes.

Results (percent) are keyed ``{Class}_{Type}_{AP11|AP40}_{easy|moderate|hard}`` for the strict
thresholds, the same with ``_loose`` appended for the loose ones, and ``Overall_{Type}_{AP}_{difficulty}``
for the mean over the evaluated classes at the strict thresholds; ``Type`` is ``2D``, ``BEV``, ``3D`` or
``AOS``. A class without valid ground truth scores 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ada3d.evaluation.box_overlaps import BEV_IOU, BOX3D_IOU, IMAGE_IOA, IMAGE_IOU, framewise_overlaps
from ada3d.evaluation.kitti_annos import ANNO_SHAPES, check_anno
from ada3d.evaluation.kitti_matching import accumulate_counts, collect_tp_scores, score_thresholds

DIFFICULTIES = ("easy", "moderate", "hard")
MIN_HEIGHT = (40, 25, 25)  # pixels
MAX_OCCLUSION = (0, 1, 2)
MAX_TRUNCATION = (0.15, 0.3, 0.5)
NUM_SAMPLE_POINTS = 41
EVAL_TYPES = ("bbox", "bev", "3d", "aos")

# per class: (strict, loose) minimum overlaps for (2D, BEV, 3D)
MIN_OVERLAPS = {
    "Car": ((0.7, 0.7, 0.7), (0.7, 0.5, 0.5)),
    "Pedestrian": ((0.5, 0.5, 0.5), (0.5, 0.25, 0.25)),
    "Cyclist": ((0.5, 0.5, 0.5), (0.5, 0.25, 0.25)),
    "Van": ((0.7, 0.7, 0.7), (0.7, 0.5, 0.5)),
    "Person_sitting": ((0.5, 0.5, 0.5), (0.5, 0.25, 0.25)),
}
OVERLAP_SETS = ("strict", "loose")
# ground truth of the neighbouring class is ignored, not missed
NEIGHBOUR_CLASS = {"car": "van", "pedestrian": "person_sitting"}


@dataclass(frozen=True)
class _Metric:
    eval_type: str  # 'bbox', 'bev', '3d'
    key: str  # name in result keys
    row: str  # row label in the table
    overlap_kind: int
    column: int  # index into a MIN_OVERLAPS triple


_METRICS = (
    _Metric("bbox", "2D", "bbox", IMAGE_IOU, 0),
    _Metric("bev", "BEV", "bev ", BEV_IOU, 1),
    _Metric("3d", "3D", "3d  ", BOX3D_IOU, 2),
)
_AOS = _Metric("aos", "AOS", "aos ", IMAGE_IOU, 0)  # measured on the 2D matches


@dataclass
class _Frames:
    """Annotations of all frames, concatenated; ``offsets [F + 1]`` delimit the frames."""

    names: np.ndarray  # [N] lower-case
    truncated: np.ndarray
    occluded: np.ndarray
    alpha: np.ndarray
    bbox: np.ndarray  # [N, 4]
    camera_boxes: np.ndarray  # [N, 7] x, y, z, l, h, w, ry
    score: np.ndarray
    offsets: np.ndarray

    @classmethod
    def stack(cls, annos: Sequence[dict], kind: str) -> _Frames:
        counts = [check_anno(anno, f"{kind} of frame {k}", needs_score=kind == "prediction")
                  for k, anno in enumerate(annos)]

        def column(key):  # all frames' rows of one key, [N, *shape]
            shape = ANNO_SHAPES[key]
            parts = [np.asarray(anno[key], dtype=np.float64).reshape(-1, *shape) for anno in annos]
            return np.concatenate([*parts, np.zeros((0, *shape))])

        names = np.concatenate([*(np.asarray(anno["name"], dtype=str) for anno in annos), np.zeros(0, dtype=str)])
        return cls(
            names=np.char.lower(names),
            truncated=column("truncated"),
            occluded=column("occluded"),
            alpha=column("alpha"),
            bbox=column("bbox"),
            camera_boxes=np.concatenate([column("location"), column("dimensions"), column("rotation_y")[:, None]], 1),
            score=column("score") if kind == "prediction" else np.zeros(sum(counts)),
            offsets=np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        )

    def boxes_for(self, kind: int) -> np.ndarray:
        return self.bbox if kind in (IMAGE_IOU, IMAGE_IOA) else self.camera_boxes


def _canonical_classes(classes: str | Sequence[str]) -> list[str]:
    by_lower = {name.lower(): name for name in MIN_OVERLAPS}
    classes = [classes] if isinstance(classes, str) else list(classes)
    unknown = [name for name in classes if name.lower() not in by_lower]
    if unknown or not classes:
        raise ValueError(f"KITTI evaluation supports the classes {sorted(MIN_OVERLAPS)}, got {classes}")
    return [by_lower[name.lower()] for name in classes]


def _ignore_marks(gt: _Frames, dt: _Frames, class_name: str, difficulty: int):
    """The devkit's ``cleanData`` for all frames: ``(ignored_gt [N_gt], ignored_dt [N_dt], num_valid_gt)``."""
    name = class_name.lower()
    same = gt.names == name
    neighbour = gt.names == NEIGHBOUR_CLASS.get(name, "")
    too_hard = (
        (gt.occluded > MAX_OCCLUSION[difficulty])
        | (gt.truncated > MAX_TRUNCATION[difficulty])
        | (gt.bbox[:, 3] - gt.bbox[:, 1] <= MIN_HEIGHT[difficulty])
    )
    ignored_gt = np.where(same & ~too_hard, 0, np.where(neighbour | (same & too_hard), 1, -1)).astype(np.int64)
    too_small = np.abs(dt.bbox[:, 3] - dt.bbox[:, 1]) < MIN_HEIGHT[difficulty]
    ignored_dt = np.where(too_small, 1, np.where(dt.names == name, 0, -1)).astype(np.int64)
    return ignored_gt, ignored_dt, int((ignored_gt == 0).sum())


def _curves(gt, dt, overlaps, dontcare_overlaps, blocks, marks, use_dontcare, min_overlap, compute_aos):
    """Monotone precision and orientation-similarity curves ``[41]`` each for one class / difficulty."""
    ignored_gt, ignored_dt, num_valid_gt = marks
    is_dontcare = gt.names == "dontcare"
    common = (overlaps, dontcare_overlaps, blocks, gt.offsets, dt.offsets, ignored_gt, ignored_dt, is_dontcare,
              use_dontcare, dt.score)
    precision = np.zeros(NUM_SAMPLE_POINTS)
    orientation = np.zeros(NUM_SAMPLE_POINTS)
    if num_valid_gt == 0:
        return precision, orientation
    thresholds = score_thresholds(collect_tp_scores(*common, min_overlap), num_valid_gt, NUM_SAMPLE_POINTS)
    counts = accumulate_counts(*common, gt.alpha, dt.alpha, min_overlap, thresholds, compute_aos)
    predicted = counts[:, 0] + counts[:, 1]  # TP + FP
    np.divide(counts[:, 0], predicted, out=precision[: len(thresholds)], where=predicted > 0)
    np.divide(counts[:, 3], predicted, out=orientation[: len(thresholds)], where=predicted > 0)
    # each point takes the best value at equal or higher recall
    return np.maximum.accumulate(precision[::-1])[::-1], np.maximum.accumulate(orientation[::-1])[::-1]


def average_precision_11(curve: np.ndarray) -> float:
    """AP (percent) over the 11 recall points 0, 0.1, ..., 1 of a 41-point curve."""
    return float(curve[0::4].sum() / 11 * 100)


def average_precision_40(curve: np.ndarray) -> float:
    """AP (percent) over the 40 recall points 1/40, ..., 1 of a 41-point curve."""
    return float(curve[1:].sum() / 40 * 100)


def _evaluate(gt, dt, classes, metrics, compute_aos, progress):
    """``{(type key, class, overlap set): [3 difficulties, 2 (AP11, AP40)]}``."""
    aps = {}
    bar = tqdm(total=len(metrics) * len(classes) * len(DIFFICULTIES), desc="KITTI evaluation", unit="curve",
               disable=not progress, delay=1.0)
    for metric in metrics:
        overlaps, blocks = framewise_overlaps(
            metric.overlap_kind, dt.boxes_for(metric.overlap_kind), dt.offsets,
            gt.boxes_for(metric.overlap_kind), gt.offsets,
        )
        use_dontcare = metric.overlap_kind == IMAGE_IOU
        dontcare_overlaps = framewise_overlaps(IMAGE_IOA, dt.bbox, dt.offsets, gt.bbox, gt.offsets)[0] \
            if use_dontcare else overlaps
        with_aos = compute_aos and metric.eval_type == "bbox"
        for name in classes:
            for difficulty in range(3):
                marks = _ignore_marks(gt, dt, name, difficulty)
                cache = {}
                for set_index, overlap_set in enumerate(OVERLAP_SETS):
                    min_overlap = MIN_OVERLAPS[name][set_index][metric.column]
                    if min_overlap not in cache:
                        cache[min_overlap] = _curves(gt, dt, overlaps, dontcare_overlaps, blocks, marks,
                                                     use_dontcare, min_overlap, with_aos)
                    precision, orientation = cache[min_overlap]
                    curves = [(metric.key, precision)] + ([(_AOS.key, orientation)] if with_aos else [])
                    for key, curve in curves:
                        table = aps.setdefault((key, name, overlap_set), np.zeros((3, 2)))
                        table[difficulty] = average_precision_11(curve), average_precision_40(curve)
                bar.update()
    bar.close()
    return aps


def _report(aps, classes, metrics):
    """The familiar mmdetection3d / OpenPCDet table and the flat result dict."""
    lines, results = [], {}
    rows = [*metrics, _AOS]
    for point_index, points in enumerate(("AP11", "AP40")):
        lines += ["", f"----------- {points} Results ------------", ""]
        for name in classes:
            for set_index, overlap_set in enumerate(OVERLAP_SETS):
                thresholds = ", ".join(f"{value:.2f}" for value in MIN_OVERLAPS[name][set_index])
                lines.append(f"{name} {points}@{thresholds}:")
                for metric in rows:
                    table = aps.get((metric.key, name, overlap_set))
                    if table is None:
                        continue
                    lines.append(f"{metric.row} {points}:" + ", ".join(f"{v:.4f}" for v in table[:, point_index]))
                    suffix = "" if overlap_set == "strict" else "_loose"
                    for difficulty, value in zip(DIFFICULTIES, table[:, point_index]):
                        results[f"{name}_{metric.key}_{points}_{difficulty}{suffix}"] = float(value)
        lines += ["", f"Overall {points}@{', '.join(DIFFICULTIES)} (mean over {', '.join(classes)}):"]
        for metric in rows:
            tables = [aps[(metric.key, name, "strict")] for name in classes if (metric.key, name, "strict") in aps]
            if not tables:
                continue
            mean = np.mean(tables, axis=0)[:, point_index]
            lines.append(f"{metric.row} {points}:" + ", ".join(f"{v:.4f}" for v in mean))
            for difficulty, value in zip(DIFFICULTIES, mean):
                results[f"Overall_{metric.key}_{points}_{difficulty}"] = float(value)
    return "\n".join(lines) + "\n", results


def kitti_eval(
    gt_annos: Sequence[dict],
    dt_annos: Sequence[dict],
    classes: str | Sequence[str],
    eval_types: Sequence[str] = EVAL_TYPES,
    progress: bool = True,
) -> tuple[str, dict[str, float]]:
    """Evaluate detections with the official KITTI protocol (see the module docstring).

    Args:
        gt_annos: per frame, the ground truth as a dict of arrays (see :mod:`ada3d.evaluation.kitti_annos`),
            DontCare rows included.
        dt_annos: per frame (same order), the detections, with ``score``.
        classes: among Car, Pedestrian, Cyclist, Van, Person_sitting (any case).
        eval_types: any of 'bbox', 'bev', '3d', 'aos' ('aos' needs 'bbox'). AOS is skipped with a warning
            when a detection carries alpha -10, the devkit's mark of a detector without orientation.
        progress: show a progress bar when the evaluation takes more than a second.

    Returns:
        ``(table, results)``: the printable table, and AP in percent keyed as the module docstring says.
    """
    if len(gt_annos) != len(dt_annos):
        raise ValueError(f"{len(gt_annos)} ground-truth frames but {len(dt_annos)} prediction frames")
    unknown = sorted(set(eval_types) - set(EVAL_TYPES))
    if unknown or not eval_types:
        raise ValueError(f"eval_types must be among {EVAL_TYPES}, got {list(eval_types)}")
    if "aos" in eval_types and "bbox" not in eval_types:
        raise ValueError("AOS is measured on 2D box matches: eval_types with 'aos' needs 'bbox'")
    classes = _canonical_classes(classes)
    gt, dt = _Frames.stack(gt_annos, "ground truth"), _Frames.stack(dt_annos, "prediction")
    compute_aos = "aos" in eval_types
    if compute_aos and np.any(dt.alpha == -10):
        warnings.warn("KITTI evaluation: detections with alpha -10 (no orientation): AOS skipped", stacklevel=2)
        compute_aos = False
    metrics = [metric for metric in _METRICS if metric.eval_type in eval_types]
    aps = _evaluate(gt, dt, classes, metrics, compute_aos, progress)
    return _report(aps, classes, metrics)
