import numpy as np
import pytest

from ada3d.datasets.kitti_files import (
    read_calib_file,
    read_label_file,
    write_calib_file,
    write_label_file,
)
from tests.conftest import KITTI_DEMO_ROOT

LABEL = KITTI_DEMO_ROOT / "training" / "label_2" / "000008.txt"
CALIB = KITTI_DEMO_ROOT / "training" / "calib" / "000008.txt"


def test_label_fields_of_a_real_file():
    objects = read_label_file(LABEL)
    assert [o.name for o in objects] == ["Car"] * 6 + ["DontCare"] * 4
    first = objects[0]  # "Car 0.88 3 -0.69 0.00 192.37 402.31 374.00 1.60 1.57 3.23 -2.70 1.74 3.68 -1.29"
    assert (first.truncated, first.occluded, first.alpha, first.rotation_y) == (0.88, 3, -0.69, -1.29)
    np.testing.assert_array_equal(first.dimensions, [3.23, 1.60, 1.57])  # l, h, w
    np.testing.assert_array_equal(first.location, [-2.70, 1.74, 3.68])
    np.testing.assert_array_equal(first.bbox, [0.0, 192.37, 402.31, 374.0])
    assert first.score is None


def test_label_and_calib_round_trip(tmp_path):
    objects = read_label_file(LABEL)
    objects[1].score = 0.75
    write_label_file(tmp_path / "label.txt", objects)
    assert tmp_path.joinpath("label.txt").read_text().splitlines()[0] == LABEL.read_text().splitlines()[0]
    again = read_label_file(tmp_path / "label.txt")
    assert again[1].score == 0.75
    np.testing.assert_allclose([o.camera_box for o in again], [o.camera_box for o in objects])

    calib = read_calib_file(CALIB)
    write_calib_file(tmp_path / "calib.txt", calib)
    np.testing.assert_allclose(read_calib_file(tmp_path / "calib.txt").lidar2cam, calib.lidar2cam, rtol=1e-12)


def test_empty_label_file_is_a_frame_without_objects(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    assert read_label_file(tmp_path / "empty.txt") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Car 0.0 0 0.1 1 2 3 4 1.5 1.6 3.9 1 2\n", "15 fields"),
        ("Car 0.0 0 0.1 1 2 3 4 1.5 1.6 3.9 1 2 x 0.2\n", "non-numeric"),
    ],
)
def test_malformed_label_names_file_and_line(tmp_path, text, message):
    path = tmp_path / "000003.txt"
    path.write_text("Car 0.00 0 0.1 1 2 3 4 1.5 1.6 3.9 1 2 10 0.2\n" + text)
    with pytest.raises(ValueError, match=rf"000003\.txt:2: .*{message}"):
        read_label_file(path)


def test_missing_files_and_matrices_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        read_label_file(tmp_path / "nothing.txt")
    with pytest.raises(FileNotFoundError, match="calib file not found"):
        read_calib_file(tmp_path / "nothing.txt")
    (tmp_path / "calib.txt").write_text("\n".join(CALIB.read_text().splitlines()[:4]))
    with pytest.raises(ValueError, match="calib.txt: calib file lacks R0_rect, Tr_velo_to_cam"):
        read_calib_file(tmp_path / "calib.txt")
    (tmp_path / "short.txt").write_text(CALIB.read_text().replace("P2: 7.215377000000e+02 ", "P2: "))
    with pytest.raises(ValueError, match=r"short.txt:3: P2 needs 12 numbers"):
        read_calib_file(tmp_path / "short.txt")
