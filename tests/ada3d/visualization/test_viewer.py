"""The interactive viewer's key handling (the window itself needs a display and is not opened here)."""

import pytest

pytest.importorskip("open3d", reason="the viewer needs open3d (pip install 'ada3d[viz]')")

from ada3d.visualization.frame_view import FrameView  # noqa: E402
from ada3d.visualization.scene import SceneOptions  # noqa: E402
from ada3d.visualization.viewer import ViewerState, has_display, run_viewer  # noqa: E402
from tests.ada3d.visualization.frames import lattice_frame, lattice_points  # noqa: E402


def test_frames_and_stages_wrap_around():
    state = ViewerState(num_frames=3)
    assert state.handle_key("p", num_stages=2) == "scene" and state.frame == 2
    assert state.handle_key("n", num_stages=2) == "scene" and state.frame == 0
    assert state.handle_key("]", num_stages=2) == "scene" and state.stage == 1
    assert state.handle_key("]", num_stages=2) == "scene" and state.stage == 0
    assert state.handle_key("[", num_stages=2) == "scene" and state.stage == 1
    assert state.handle_key("]", num_stages=0) is None and state.stage == 1


def test_colouring_cycles_and_stage_keys_return_to_stage_colours():
    state = ViewerState(num_frames=1)
    seen = [state.color_by]
    for _ in range(3):
        state.handle_key("c", num_stages=1)
        seen.append(state.color_by)
    assert seen == ["stage", "height", "intensity", "stage"]
    state.handle_key("c", num_stages=1)
    state.handle_key("[", num_stages=1)
    assert state.color_by == "stage"
    without_stages = ViewerState(num_frames=1, color_by="height")
    without_stages.handle_key("c", num_stages=0)
    without_stages.handle_key("c", num_stages=0)
    assert without_stages.color_by == "height"


def test_toggles_and_camera():
    state = ViewerState(num_frames=1)
    for key, attribute in [("g", "show_gt"), ("r", "show_pred"), ("i", "show_importance")]:
        assert state.handle_key(key, num_stages=0) == "scene" and getattr(state, attribute) is False
    assert state.handle_key("t", num_stages=0) == "camera" and state.camera == "top"
    assert state.handle_key("t", num_stages=0) == "camera" and state.camera == "chase"
    assert state.handle_key("x", num_stages=0) is None


def test_scene_options_fit_the_frame():
    state = ViewerState(num_frames=1, stage=3, show_gt=False)
    base = SceneOptions(point_size=5.0)
    options = state.scene_options(lattice_frame(), base)
    assert (options.stage, options.color_by, options.show_gt, options.point_size) == (0, "stage", False, 5.0)
    assert state.scene_options(FrameView(points=lattice_points()), base).color_by == "height"


def test_without_a_display_the_viewer_says_what_to_do(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert not has_display()
    with pytest.raises(RuntimeError, match="--out DIR"):
        run_viewer([("lattice", lattice_frame)])
