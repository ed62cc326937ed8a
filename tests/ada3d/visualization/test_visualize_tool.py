"""tools/visualize.py end to end, headless: a real KITTI scan, and a saved frame with pruning masks.

The renders run the tool as a user does, in its own process under a time limit, so a stalled renderer
fails the test instead of stalling the run; argument checks call its ``main`` directly.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("open3d", reason="tools/visualize.py renders with open3d (pip install 'ada3d[viz]')")

from PIL import Image  # noqa: E402

from ada3d.visualization import GridGeometry  # noqa: E402
from ada3d.visualization.colors import DROPPED_COLOR, GT_BOX_COLOR, KEPT_COLOR, PRED_BOX_COLOR  # noqa: E402
from ada3d.visualization.frame_io import save_frame_view  # noqa: E402
from tests.ada3d.visualization.conftest import TINY_ADA3D_CONFIG  # noqa: E402
from tests.ada3d.visualization.frames import RANGE, lattice_frame  # noqa: E402
from tests.conftest import KITTI_DEMO_ROOT  # noqa: E402

TOOL = Path(__file__).resolve().parents[3] / "tools" / "visualize.py"
_spec = importlib.util.spec_from_file_location("visualize_cli", TOOL)
visualize = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(visualize)

SCAN = KITTI_DEMO_ROOT / "training" / "velodyne" / "000008.bin"
pytestmark = pytest.mark.usefixtures("open3d_renders")


def _run_tool(*args: str) -> str:
    """Run tools/visualize.py (renders retried after 30 s, the whole run cut at 240 s); returns its stdout."""
    try:
        result = subprocess.run([sys.executable, str(TOOL), *args, "--render-timeout", "30"], cwd=TOOL.parents[1],
                                capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"tools/visualize.py {' '.join(args)} did not finish in 240 s:\n{error.stdout}\n{error.stderr}")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result.stdout


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


def _pixels_of(image, color, atol=3) -> int:
    return int((np.abs(image - np.round(255 * np.asarray(color))).max(-1) <= atol).sum())


def test_a_kitti_scan_renders_to_pngs_with_its_labels(tmp_path):
    output = _run_tool("--bin", str(SCAN), "--out", str(tmp_path), "--size", "480", "300", "--views", "chase")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == ["000008_bev.png", "000008_height_chase.png"]
    assert "wrote 2 images" in output
    chase = _image(tmp_path / "000008_height_chase.png")
    assert chase.shape == (300, 480, 3)
    assert len(np.unique(chase.reshape(-1, 3), axis=0)) > 50 and chase.std() > 5  # not blank
    assert _pixels_of(chase, GT_BOX_COLOR) > 100  # the six labelled cars, found in the KITTI tree
    bev = _image(tmp_path / "000008_bev.png")
    assert bev.std() > 5 and _pixels_of(bev, GT_BOX_COLOR, atol=40) > 50


def test_a_saved_frame_renders_each_stage_with_its_masks(tmp_path):
    view = lattice_frame()
    grid = GridGeometry((4.0, 4.0), RANGE)
    view.stages[0].importance, view.stages[0].importance_grid = np.ones(grid.shape), grid
    path = save_frame_view(view, tmp_path / "lattice.npz")
    out = tmp_path / "out"
    _run_tool("--frame-view", str(path), "--out", str(out), "--size", "400", "400", "--point-size", "6",
              "--views", "top", "--no-importance")
    stem = "lattice_stage0_keep_x_20"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["lattice_bev.png", f"{stem}_top.png", f"{stem}_bev.png", f"{stem}_density.png"])
    top = _image(out / f"{stem}_top.png")
    # the range comes from the stage's grid: 10 px/m, +x up, +y left; these points are away from the legend
    for x, y, color in [(1, -19, KEPT_COLOR), (17, -5, KEPT_COLOR), (21, -5, DROPPED_COLOR), (39, -19, DROPPED_COLOR)]:
        row, col = int((RANGE[3] - x) * 10), int((RANGE[4] - y) * 10)
        np.testing.assert_allclose(top[row, col], np.round(255 * np.asarray(color)), atol=1)
    assert _pixels_of(_image(out / f"{stem}_bev.png"), KEPT_COLOR, atol=2) > 400  # 200 kept 0.2 m cells


def test_a_model_run_shows_predictions_and_the_stage_it_is_asked_for(tmp_path, tiny_ada3d_checkpoint):
    _run_tool("--bin", str(SCAN), "--config", str(TINY_ADA3D_CONFIG), "--checkpoint", str(tiny_ada3d_checkpoint),
              "--device", "cpu", "--score-threshold", "0.2", "--stage", "BEV", "--views", "top",
              "--size", "400", "456", "--out", str(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "000008_bev.png", "000008_stage3_bev_bev.png", "000008_stage3_bev_density.png", "000008_stage3_bev_top.png"]
    top = _image(tmp_path / "000008_stage3_bev_top.png")
    assert _pixels_of(top, KEPT_COLOR, atol=1) > 500 and _pixels_of(top, DROPPED_COLOR, atol=1) > 500
    assert _pixels_of(top, PRED_BOX_COLOR) > 50


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--bin", str(SCAN), "--labels", "a.txt"], "--labels and --calib go together"),
        (["--kitti-root", str(KITTI_DEMO_ROOT), "--labels", "a.txt", "--calib", "b.txt"], "single --bin"),
        (["--bin", str(SCAN), "--index", "8"], "--index goes with --kitti-root"),
        (["--bin", str(SCAN), "--config", "model.py"], "--config and --checkpoint go together"),
        (["--frame-view", "a.npz", "--config", "m.py", "--checkpoint", "m.pth"], "already holds a model run"),
        (["--bin", str(SCAN), "--config", "m.py", "--checkpoint", "m.pth", "--score-threshold", "2"], "[0, 1]"),
    ],
)
def test_argument_errors(argv, message, capsys):
    with pytest.raises(SystemExit):
        visualize.main(argv)
    assert message in capsys.readouterr().err


def test_stage_colours_need_stages(tmp_path):
    with pytest.raises(ValueError, match="no pruning stages"):
        visualize.main(["--kitti-root", str(KITTI_DEMO_ROOT), "--index", "8", "--color-by", "stage",
                        "--out", str(tmp_path), "--size", "64", "64"])


def test_without_out_and_display_the_tool_points_to_out(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(SystemExit, match="--out DIR"):
        visualize.main(["--bin", str(SCAN)])
