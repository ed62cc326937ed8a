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
