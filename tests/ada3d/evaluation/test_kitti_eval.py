"""Hand-built cases whose KITTI AP is known.

KITTI samples precision at score thresholds chosen to step recall by 1/40, one threshold per counted TP at
most: with fewer than 41 valid ground truths a perfect detector cannot reach AP 100. The cases therefore
use 50 or more objects (one per frame, far apart in 2D and 3D unless a case says otherwise).
"""

import numpy as np
import pytest

from ada3d.datasets.kitti_files import KittiObject
from ada3d.evaluation import kitti_eval, objects_to_anno
from ada3d.evaluation.kitti_eval import average_precision_11, average_precision_40

DIFFICULTIES = ("easy", "moderate", "hard")


def obj(name="Car", x=0.0, z=20.0, ry=0.0, size=(4.0, 1.5, 1.8), bbox=(500, 150, 600, 210), occluded=0,
        truncated=0.0, alpha=None, score=None):
    """A KITTI object: camera-frame bottom centre (x, 1.6, z), size (l, h, w), a 60 px tall 2D box."""
    return KittiObject(name=name, truncated=truncated, occluded=occluded, alpha=ry if alpha is None else alpha,
                       bbox=np.array(bbox, float), dimensions=np.array(size, float),
                       location=np.array([x, 1.6, z]), rotation_y=ry, score=score)


def detected(objects, score, **changes):
    """Detections copying ground-truth ``objects`` with ``score``, any :func:`obj` argument replaced."""
    return [
        obj(**{"name": gt.name, "x": gt.location[0], "z": gt.location[2], "ry": gt.rotation_y,
               "size": tuple(gt.dimensions), "bbox": tuple(gt.bbox), "alpha": gt.alpha, **changes}, score=score)
        for gt in objects
    ]


def evaluate(gt_frames, dt_frames, classes=("Car",), eval_types=("bbox", "bev", "3d", "aos")):
    _, results = kitti_eval([objects_to_anno(f) for f in gt_frames], [objects_to_anno(f) for f in dt_frames],
                            classes, eval_types, progress=False)
    return results


def values(results, class_name, metric_type, points="AP40", suffix=""):
    return [results[f"{class_name}_{metric_type}_{points}_{d}{suffix}"] for d in DIFFICULTIES]


def cars(count, **kwargs):
    return [[obj(**kwargs)] for _ in range(count)]


def test_perfect_predictions_score_100_everywhere_and_absent_classes_0():
    gt = cars(50)
    table, results = kitti_eval([objects_to_anno(f) for f in gt],
                                [objects_to_anno(detected(f, 0.9)) for f in gt],
                                ["Car", "Pedestrian"], progress=False)
    car_keys = [key for key in results if key.startswith("Car_")]
    assert len(car_keys) == 4 * 2 * 3 * 2  # types x AP11/AP40 x difficulties x strict/loose
    assert all(results[key] == pytest.approx(100.0) for key in car_keys)
    assert all(value == 0.0 for key, value in results.items() if key.startswith("Pedestrian_"))
    assert results["Overall_3D_AP40_moderate"] == pytest.approx(50.0)
    assert "Car AP40@0.70, 0.70, 0.70:" in table and "Car AP11@0.70, 0.50, 0.50:" in table
    assert "3d   AP40:100.0000, 100.0000, 100.0000" in table


def test_fewer_than_41_ground_truths_cap_the_ap():
    """3 cars found perfectly: 3 thresholds fill curve points 0..2 only (the devkit's known small-set effect)."""
    gt = cars(3)
    results = evaluate(gt, [detected(f, 0.9) for f in gt])
    assert values(results, "Car", "3D", "AP11") == pytest.approx([100 / 11] * 3)
    assert values(results, "Car", "3D", "AP40") == pytest.approx([100 * 2 / 40] * 3)


def test_all_misses_score_0():
    gt = cars(50)
    far = [detected(f, 0.9, x=30.0, bbox=(0, 0, 60, 60)) for f in gt]
    assert all(value == 0.0 for value in evaluate(gt, far).values())
    assert all(value == 0.0 for value in evaluate(gt, [[] for _ in gt]).values())


def test_false_positives_below_every_true_positive_do_not_lower_ap():
    gt = cars(50)
    dt = [[*detected(f, 0.9), obj(x=-30.0, bbox=(0, 0, 60, 60), score=0.1)] for f in gt]
    assert all(value == pytest.approx(100.0) for value in evaluate(gt, dt).values())


def test_false_positives_above_every_true_positive_give_the_precision():
    gt = cars(50)
    # 50 TPs at score 0.5, 25 FPs at 0.9: every threshold sees precision 50 / 75
    dt = [detected(f, 0.5) + ([obj(x=-30.0, bbox=(0, 0, 60, 60), score=0.9)] if k % 2 else [])
          for k, f in enumerate(gt)]
    results = evaluate(gt, dt)
    for metric_type in ("2D", "BEV", "3D", "AOS"):
        for points in ("AP11", "AP40"):
            assert values(results, "Car", metric_type, points) == pytest.approx([100 * 50 / 75] * 3)


def test_11_and_40_point_ap_of_a_hand_computed_precision_recall_curve():
    """80 cars with descending TP scores; 40 FPs scored between TP 40 and TP 41.

    The thresholds fall at recall k/40 (k >= 1; recall 1/80 for k = 0): precision is 1 up to k = 20, then
    2k / (2k + 40), whose best value at equal or higher recall is 40 / 60 for every k >= 21. So AP11 =
    (6 + 5 * 2/3) / 11 and AP40 = (20 + 20 * 2/3) / 40.
    """
    gt = cars(80)
    tp_scores = np.linspace(0.99, 0.2, 80)
    dt = [detected(f, float(s)) for f, s in zip(gt, tp_scores)]
    fp_scores = np.linspace(tp_scores[39] - 1e-4, tp_scores[40] + 1e-4, 40)
    dt += [[obj(x=-30.0, bbox=(0, 0, 60, 60), score=float(s))] for s in fp_scores]
    gt += [[] for _ in fp_scores]
    results = evaluate(gt, dt, eval_types=("3d",))
    assert values(results, "Car", "3D", "AP11") == pytest.approx([100 * (6 + 5 * 2 / 3) / 11] * 3)
    assert values(results, "Car", "3D", "AP40") == pytest.approx([100 * (20 + 20 * 2 / 3) / 40] * 3)


def test_ap_sampling_points():
    curve = np.linspace(1.0, 0.0, 41)
    assert average_precision_11(curve) == pytest.approx(100 * curve[[0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40]].mean())
    assert average_precision_40(curve) == pytest.approx(100 * curve[1:].mean())


@pytest.mark.parametrize(("shift", "strict"), [(0.69, 100.0), (0.72, 0.0)])
def test_boxes_just_above_and_below_the_car_threshold(shift, strict):
    """Shifting a 4 m car by d along its length leaves IoU (4 - d) / (4 + d): 0.7059 at 0.69, 0.6949 at 0.72."""
    gt = cars(50)
    results = evaluate(gt, [detected(f, 0.9, x=shift) for f in gt])
    for metric_type in ("BEV", "3D"):
        assert values(results, "Car", metric_type) == pytest.approx([strict] * 3)
        assert values(results, "Car", metric_type, suffix="_loose") == pytest.approx([100.0] * 3)  # 0.5
    assert values(results, "Car", "2D") == pytest.approx([100.0] * 3)  # the 2D boxes are unchanged


def test_detections_in_dontcare_regions_are_not_false_positives_in_2d():
    """50 matched cars at 0.5 and 50 unmatched detections at 0.9, each inside a DontCare region."""
    dontcare = KittiObject(name="DontCare", truncated=-1, occluded=-1, alpha=-10, bbox=np.array([0, 0, 100, 100.0]),
                           dimensions=np.array([-1.0, -1, -1]), location=np.array([-1000.0, -1000, -1000]),
                           rotation_y=-10)
    gt = [[obj(), dontcare] for _ in range(50)]
    dt = [[*detected(f[:1], 0.5), obj(x=-30.0, bbox=(10, 10, 70, 90), score=0.9)] for f in gt]
    results = evaluate(gt, dt)
    assert values(results, "Car", "2D") == pytest.approx([100.0] * 3)
    assert values(results, "Car", "AOS") == pytest.approx([100.0] * 3)
    # DontCare labels have no 3D box: in BEV and 3D those detections stay false positives
    assert values(results, "Car", "3D") == pytest.approx([50.0] * 3)
    # a detection mostly outside the region (intersection over its own area 0.5 < 0.7) is a false positive
    dt = [[*detected(f[:1], 0.5), obj(x=-30.0, bbox=(50, 10, 150, 90), score=0.9)] for f in gt]
    assert values(evaluate(gt, dt), "Car", "2D") == pytest.approx([50.0] * 3)


@pytest.mark.parametrize(("class_name", "neighbour"), [("Car", "Van"), ("Pedestrian", "Person_sitting")])
def test_neighbouring_class_is_neither_missed_nor_a_false_positive(class_name, neighbour):
    size = (4.0, 1.5, 1.8) if class_name == "Car" else (0.8, 1.7, 0.6)
    gt = [[obj(class_name, size=size), obj(neighbour, x=-10.0, size=size, bbox=(100, 150, 200, 210))]
          for _ in range(50)]
    # each frame: the target detected at 0.5; the neighbour detected as the target class at 0.9
    dt = [detected(f[:1], 0.5) + detected(f[1:], 0.9, name=class_name) for f in gt]
    assert all(value == pytest.approx(100.0) for value in evaluate(gt, dt, (class_name,)).values())
    # neighbour objects left undetected are not misses either
    assert all(value == pytest.approx(100.0) for value in evaluate(gt, [d[:1] for d in dt], (class_name,)).values())
    # the same detections on an unrelated class (Truck / Cyclist) are false positives: precision 1/2
    other = "Truck" if class_name == "Car" else "Cyclist"
    gt_other = [[f[0], obj(other, x=-10.0, size=size, bbox=(100, 150, 200, 210))] for f in gt]
    assert values(evaluate(gt_other, dt, (class_name,)), class_name, "3D") == pytest.approx([50.0] * 3)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("bbox", (500, 150, 600, 180), (100.0, 50.0, 50.0)),  # 30 px tall: below easy's 40 px
        ("bbox", (500, 150, 600, 170), (100.0, 100.0, 100.0)),  # 20 px: below every minimum height
        ("occluded", 1, (100.0, 50.0, 50.0)),
        ("occluded", 2, (100.0, 100.0, 50.0)),
        ("truncated", 0.2, (100.0, 50.0, 50.0)),
        ("truncated", 0.4, (100.0, 100.0, 50.0)),
    ],
)
def test_harder_ground_truth_is_ignored_by_easier_difficulties(field, value, expected):
    """50 easy cars detected; 50 harder cars (``field = value``) missed: AP40 50 where they count.

    With 100 valid cars and 50 TPs the thresholds cover recall 0 .. 1/2 (indices 0..20): AP40 = 20/40.
    """
    gt = [[obj(x=-10.0), obj(**{field: value})] for _ in range(50)]
    dt = [detected(f[:1], 0.9) for f in gt]
    assert values(evaluate(gt, dt, eval_types=("3d",)), "Car", "3D") == pytest.approx(list(expected))


def test_detections_below_the_minimum_height_are_ignored():
    """Unmatched 30 px detections above every TP: ignored for easy (40 px), false positives otherwise."""
    gt = cars(50)
    dt = [[*detected(f, 0.5), obj(x=-30.0, bbox=(0, 0, 60, 30), score=0.9)] for f in gt]
    assert values(evaluate(gt, dt), "Car", "2D") == pytest.approx([100.0, 50.0, 50.0])


def test_aos_follows_the_orientation_of_matched_detections():
    gt = cars(100, alpha=0.3)
    right = [detected(f, 0.9) for f in gt]
    half_flipped = [detected(f, 0.9, alpha=0.3 + np.pi * (k % 2)) for k, f in enumerate(gt)]
    assert values(evaluate(gt, right), "Car", "AOS") == pytest.approx(values(evaluate(gt, right), "Car", "2D"))
    results = evaluate(gt, half_flipped)
    assert values(results, "Car", "2D") == pytest.approx([100.0] * 3)
    assert values(results, "Car", "AOS") == pytest.approx([50.0] * 3)  # (1 + cos(pi)) / 2 = 0 for half of them
    assert values(evaluate(gt, [detected(f, 0.9, alpha=0.3 + np.pi) for f in gt]), "Car", "AOS") == [0.0] * 3


def test_aos_is_skipped_for_detections_without_orientation():
    gt = cars(3)
    with pytest.warns(UserWarning, match="alpha -10"):
        results = evaluate(gt, [detected(f, 0.9, alpha=-10) for f in gt])
    assert not any("_AOS_" in key for key in results)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: kitti_eval([{}], [], ["Car"]), "1 ground-truth frames but 0 prediction"),
        (lambda: kitti_eval([], [], ["Truck"]), "supports the classes"),
        (lambda: kitti_eval([], [], ["Car"], ("bev", "aos")), "needs 'bbox'"),
        (lambda: kitti_eval([], [], ["Car"], ("mAP",)), "eval_types must be among"),
        (lambda: kitti_eval([objects_to_anno([obj()])], [{"name": np.array(["Car"])}], ["Car"]),
         "prediction of frame 0: missing truncated"),
        (lambda: kitti_eval([dict(objects_to_anno([obj()]), bbox=np.zeros((1, 3)))],
                            [objects_to_anno([])], ["Car"]), r"ground truth of frame 0: bbox has shape \(1, 3\)"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
