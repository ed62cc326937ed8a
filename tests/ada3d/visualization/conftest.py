"""A render probe in a child process: where Open3D cannot start its renderer it aborts the process
(C++ panic, no Python exception), which would take the whole test run down. The probe turns that into
a failed test that says what is missing."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PROBE = (
    "import numpy as np\n"
    "from ada3d.visualization import FrameView\n"
    "from ada3d.visualization.cameras import TopDownCamera\n"
    "from ada3d.visualization.render import SceneRenderer\n"
    "from ada3d.visualization.scene import SceneOptions, build_scene\n"
    "view = FrameView(points=np.zeros((1, 4)))\n"
    "scene = build_scene(view, SceneOptions(color_by='height'))\n"
    "SceneRenderer(32, 32).render(scene, TopDownCamera((-1, 1), (-1, 1)))\n"
)


@pytest.fixture(scope="session")
def open3d_renders() -> None:
    """Fails (does not skip) when Open3D is installed but cannot render off screen."""
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        pytest.fail(
            "Open3D is installed but cannot render off screen (exit code "
            f"{result.returncode}). Without a GPU it needs Mesa's Vulkan driver: apt-get install libvulkan1 "
            f"mesa-vulkan-drivers. Its output ended with:\n{(result.stdout + result.stderr)[-2000:]}"
        )


TINY_ADA3D_CONFIG = REPO_ROOT / "configs" / "ada3d" / "ada3d_second_hv_secfpn_tiny_synthkitti-3d-3class_stage3.py"


def save_random_checkpoint(config: Path, path: Path) -> Path:
    """The randomly initialised (seeded) model of ``config``, saved as an mmengine checkpoint at ``path``; its
    classifier bias is zeroed (scores near 0.5 rather than the 0.01 prior) so that it predicts boxes."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import ada3d.models  # noqa: F401  (registers the detectors)
    from ada3d.registry import MODELS

    init_default_scope("ada3d")
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    torch.nn.init.zeros_(model.bbox_head.conv_cls.bias)
    torch.save({"state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="session")
def tiny_ada3d_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny Ada3D stage-3 model (drops at encoder_layer1, encoder_layer2 and BEV)."""
    return save_random_checkpoint(TINY_ADA3D_CONFIG, tmp_path_factory.mktemp("ada3d") / "tiny_ada3d.pth")
