"""What the viewer shows of one frame: points, boxes and what Ada3D kept at each pruning stage.

A model run, a dataset or a saved file only has to fill a :class:`FrameView`; the Open3D scene
(:mod:`ada3d.visualization.scene`) and the matplotlib figures (:mod:`ada3d.visualization.bev_plots`)
read nothing else. Arrays are numpy; boxes follow ``ada3d.structures`` (LiDAR ``(x, y, z, l, w, h, yaw)``,
z at the bottom centre, metres and radians).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

# Status of a point (or cell) at one pruning stage.
KEPT = 1
DROPPED = 0
NOT_IN_STAGE = -1  # not an input of the stage: outside its grid, or dropped by an earlier stage


@dataclass(frozen=True)
class GridGeometry:
    """A regular grid over a point-cloud range: voxels (3D) or BEV cells (2D).

    Attributes:
        cell_size: ``(dx, dy)`` or ``(dx, dy, dz)`` in metres (a BEV pixel after a stride-8 encoder of
            0.05 m voxels is 0.4 m).
        point_cloud_range: ``(x0, y0, z0, x1, y1, z1)`` in metres; a 2D grid ignores the z extent.

    Cell coordinates are integer rows in reversed axis order, ``(z, y, x)`` or ``(y, x)``, as
    ``ada3d.ops.voxelize`` and ``sparse_ops`` write them; a BEV map ``[H, W]`` is indexed ``[y, x]``.
    """

    cell_size: tuple[float, ...]
    point_cloud_range: tuple[float, float, float, float, float, float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "cell_size", tuple(float(size) for size in self.cell_size))
        object.__setattr__(self, "point_cloud_range", tuple(float(value) for value in self.point_cloud_range))
        if len(self.cell_size) not in (2, 3) or min(self.cell_size) <= 0:
            raise ValueError(f"cell_size must be 2 or 3 positive sizes (dx, dy[, dz]), got {self.cell_size}")
        bounds = np.array(self.point_cloud_range)
        if len(bounds) != 6 or (bounds[3 : 3 + self.ndim] <= bounds[: self.ndim]).any():
            raise ValueError(f"point_cloud_range must be (x0, y0, z0, x1, y1, z1) with x0 < x1 ..., "
                             f"got {self.point_cloud_range}")

    @property
    def ndim(self) -> int:
        return len(self.cell_size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Cells per axis in coordinate order: ``(nz, ny, nx)`` or ``(ny, nx)``."""
        extent = np.subtract(self.point_cloud_range[3 : 3 + self.ndim], self.point_cloud_range[: self.ndim])
        return tuple(int(n) for n in np.round(extent / self.cell_size)[::-1])

    @property
    def bev(self) -> GridGeometry:
        """The 2D grid of this grid's ``(x, y)`` cells."""
        return GridGeometry(self.cell_size[:2], self.point_cloud_range)

    def cells_of(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cell of each point.

        Args:
            points: ``[N, >=ndim]``, columns x, y (, z) first, metres.

        Returns:
            ``(coords [N, ndim] int64 in (z, y, x) / (y, x) order, inside [N] bool)``; coordinates of
            points outside the range are meaningless.
        """
        lower = np.asarray(self.point_cloud_range[: self.ndim])
        cells_xyz = np.floor((points[:, : self.ndim] - lower) / np.asarray(self.cell_size)).astype(np.int64)
        inside = ((cells_xyz >= 0) & (cells_xyz < np.asarray(self.shape[::-1]))).all(1)
        return cells_xyz[:, ::-1], inside

    def cell_centres(self, coords: np.ndarray) -> np.ndarray:
        """``[K, ndim]`` cell coordinates (z, y, x) / (y, x) -> ``[K, ndim]`` centres ``(x, y[, z])`` in metres."""
        lower = np.asarray(self.point_cloud_range[: self.ndim])
        return lower + (np.asarray(coords)[:, ::-1] + 0.5) * np.asarray(self.cell_size)

    def flat_index(self, coords: np.ndarray) -> np.ndarray:
        """Row-major index of in-grid coordinates ``[K, ndim]``; ``[K]`` int64."""
        return np.ravel_multi_index(tuple(np.asarray(coords, dtype=np.int64).T), self.shape)


@dataclass
class PruningStage:
    """What one stage of the Ada3D filter kept.

    Either point-level (``coords`` None: ``kept [N]`` over the frame's points) or cell-level
    (``kept [K]`` over the active cells ``coords [K, ndim]`` of ``grid``: 3D voxels after a sparse-encoder
    stage, or BEV pixels). A point's status at a cell-level stage is its cell's; points whose cell is
    not among ``coords`` are :data:`NOT_IN_STAGE`.

    Attributes:
        name: e.g. ``"3D input"``, ``"after 3D stage 2"``, ``"BEV"``.
        kept: bool ``[N]`` or ``[K]``.
        coords: int ``[K, 3]`` (z, y, x) or ``[K, 2]`` (y, x) cell coordinates, unique, or None.
        grid: geometry of ``coords`` (required with ``coords``).
        importance: float ``[H, W]`` predicted importance (any scale; drawn with its own colour range) or None.
        importance_grid: the 2D geometry of ``importance`` (required with it; ``shape == (H, W)``).
    """

    name: str
    kept: np.ndarray
    coords: np.ndarray | None = None
    grid: GridGeometry | None = None
    importance: np.ndarray | None = None
    importance_grid: GridGeometry | None = None

    def __post_init__(self) -> None:
        self.kept = np.asarray(self.kept, dtype=bool)
        if self.kept.ndim != 1:
            raise ValueError(f"stage {self.name!r}: kept must be a 1-D mask, got shape {self.kept.shape}")
        if self.coords is not None:
            self.coords = np.asarray(self.coords, dtype=np.int64)
            if self.grid is None:
                raise ValueError(f"stage {self.name!r}: coords need their grid geometry")
            if self.coords.shape != (len(self.kept), self.grid.ndim):
                raise ValueError(f"stage {self.name!r}: coords must be [{len(self.kept)}, {self.grid.ndim}] "
                                 f"(one row per kept entry, grid of {self.grid.ndim} dims), got {self.coords.shape}")
            if ((self.coords < 0) | (self.coords >= np.asarray(self.grid.shape))).any():
                raise ValueError(f"stage {self.name!r}: coords outside the grid of shape {self.grid.shape}")
            if len(np.unique(self.grid.flat_index(self.coords))) != len(self.coords):
                raise ValueError(f"stage {self.name!r}: coords contain duplicate cells")
        if self.importance is not None:
            self.importance = np.asarray(self.importance, dtype=np.float32)
            if self.importance_grid is None or self.importance_grid.ndim != 2:
                raise ValueError(f"stage {self.name!r}: an importance map needs its 2D importance_grid")
            if self.importance.shape != self.importance_grid.shape:
                raise ValueError(f"stage {self.name!r}: importance map of shape {self.importance.shape} does not "
                                 f"match its grid's (H, W) = {self.importance_grid.shape}")

    @property
    def is_point_level(self) -> bool:
        return self.coords is None

    def point_status(self, points: np.ndarray) -> np.ndarray:
        """int8 ``[N]``: :data:`KEPT`, :data:`DROPPED` or :data:`NOT_IN_STAGE` for each point ``[N, >=3]``."""
        if self.is_point_level:
            if len(self.kept) != len(points):
                raise ValueError(f"stage {self.name!r}: point mask has {len(self.kept)} entries for "
                                 f"{len(points)} points")
            return np.where(self.kept, KEPT, DROPPED).astype(np.int8)
        status = np.full(len(points), NOT_IN_STAGE, dtype=np.int8)
        if not len(self.coords):
            return status
        cells, inside = self.grid.cells_of(points)
        stage_keys = self.grid.flat_index(self.coords)
        order = np.argsort(stage_keys)
        sorted_keys = stage_keys[order]
        point_keys = self.grid.flat_index(cells[inside])
        slot = np.minimum(np.searchsorted(sorted_keys, point_keys), len(order) - 1)
        found = sorted_keys[slot] == point_keys
        status[np.flatnonzero(inside)[found]] = np.where(self.kept[order[slot[found]]], KEPT, DROPPED)
        return status


@dataclass
class FrameView:
    """One frame as the viewer shows it.

    Attributes:
        points: float ``[N, C]``, columns x, y, z (metres), then intensity and any others.
        name: shown in captions and used in file names (e.g. the KITTI sample id).
        gt_boxes: ``[M, 7]`` LiDAR boxes; ``gt_labels [M]`` indices into ``class_names`` (or None).
        pred_boxes / pred_scores / pred_labels: ``[P, 7]``, ``[P]``, ``[P]`` (labels may be None).
        class_names: names of the label indices.
        stages: the pruning stages in network order (empty without an Ada3D model).
    """

    points: np.ndarray
    name: str = "frame"
    gt_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), dtype=np.float32))
    gt_labels: np.ndarray | None = None
    pred_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), dtype=np.float32))
    pred_scores: np.ndarray | None = None
    pred_labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    stages: list[PruningStage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.points = np.asarray(self.points, dtype=np.float32)
        if self.points.ndim != 2 or self.points.shape[1] < 3:
            raise ValueError(f"frame {self.name!r}: points must be [N, C>=3] (x, y, z first), got {self.points.shape}")
        self.class_names = tuple(self.class_names)
        self.gt_boxes = _boxes(self.gt_boxes, f"frame {self.name!r}: gt_boxes")
        self.pred_boxes = _boxes(self.pred_boxes, f"frame {self.name!r}: pred_boxes")
        self.gt_labels = self._labels(self.gt_labels, len(self.gt_boxes), "gt_labels")
        self.pred_labels = self._labels(self.pred_labels, len(self.pred_boxes), "pred_labels")
        if self.pred_scores is not None:
            self.pred_scores = np.asarray(self.pred_scores, dtype=np.float32).reshape(-1)
            if len(self.pred_scores) != len(self.pred_boxes):
                raise ValueError(f"frame {self.name!r}: {len(self.pred_scores)} pred_scores for "
                                 f"{len(self.pred_boxes)} pred_boxes")
        self.stages = list(self.stages)
        for stage in self.stages:
            if stage.is_point_level and len(stage.kept) != len(self.points):
                raise ValueError(f"frame {self.name!r}: stage {stage.name!r} has a point mask of "
                                 f"{len(stage.kept)} entries for {len(self.points)} points")

    def _labels(self, labels: np.ndarray | None, count: int, what: str) -> np.ndarray | None:
        if labels is None:
            return None
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != count:
            raise ValueError(f"frame {self.name!r}: {len(labels)} {what} for {count} boxes")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(f"frame {self.name!r}: {what} must index class_names {self.class_names}, "
                             f"got values in [{labels.min()}, {labels.max()}]")
        return labels

    def stage(self, key: int | str) -> PruningStage:
        """A stage by position or name; raises ``KeyError`` listing the stages."""
        if isinstance(key, int) and -len(self.stages) <= key < len(self.stages):
            return self.stages[key]
        for stage in self.stages:
            if stage.name == key:
                return stage
        raise KeyError(f"frame {self.name!r} has no stage {key!r}; stages: {[s.name for s in self.stages]}")

    def label_text(self, index: int) -> str:
        """``"Car 0.93"`` for prediction ``index`` (class name and score, as available)."""
        parts = []
        if self.pred_labels is not None:
            parts.append(self.class_names[self.pred_labels[index]])
        if self.pred_scores is not None:
            parts.append(f"{self.pred_scores[index]:.2f}")
        return " ".join(parts)


def _boxes(boxes: np.ndarray, what: str) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        return np.zeros((0, 7), dtype=np.float32)
    if boxes.ndim != 2 or boxes.shape[1] < 7:
        raise ValueError(f"{what} must be [M, 7] (x, y, z, l, w, h, yaw), got shape {boxes.shape}")
    return boxes[:, :7]


def frame_view_from_data_sample(
    points: np.ndarray,
    data_sample,
    class_names: Sequence[str],
    stages: Sequence[PruningStage] = (),
    name: str | None = None,
) -> FrameView:
    """A :class:`FrameView` from a ``Det3DDataSample`` (ground truth and/or predictions, tensors or arrays).

    Args:
        points: ``[N, C]`` the points the model saw.
        data_sample: an ``ada3d.structures.Det3DDataSample``; ``gt_instances_3d`` and ``pred_instances_3d``
            are used when present.
        class_names: the dataset's classes (``metainfo['classes']``).
        stages: what the Ada3D filter kept, in network order.
        name: defaults to the sample's ``sample_idx`` metainfo.
    """

    def array(value) -> np.ndarray:
        return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)

    fields = {}
    if hasattr(data_sample, "gt_instances_3d"):
        gt = data_sample.gt_instances_3d
        fields["gt_boxes"] = array(gt.bboxes_3d)
        fields["gt_labels"] = array(gt.labels_3d) if "labels_3d" in gt else None
    if hasattr(data_sample, "pred_instances_3d"):
        pred = data_sample.pred_instances_3d
        fields["pred_boxes"] = array(pred.bboxes_3d)
        fields["pred_scores"] = array(pred.scores_3d) if "scores_3d" in pred else None
        fields["pred_labels"] = array(pred.labels_3d) if "labels_3d" in pred else None
    if name is None:
        name = str(data_sample.metainfo.get("sample_idx", "frame"))
    return FrameView(points=array(points), name=name, class_names=tuple(class_names), stages=list(stages), **fields)
