"""Running the repository's tools as a user would: ``python tools/<name>.py ...`` from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def tool(name: str, *args: str) -> list[str]:
    """The command line of ``tools/<name>`` with ``args``, under this interpreter."""
    return [sys.executable, str(REPO_ROOT / "tools" / name), *args]


def run(command: list[str], timeout: float = 120) -> str:
    """Run ``command`` in the repository root; fail the test with its output tail unless it exits 0."""
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


# ObjectSample's ground-truth database in the KITTI configs' training pipeline (RepeatDataset -> KittiDataset)
DB_SAMPLER_KEY = "train_dataloader.dataset.dataset.pipeline.2.db_sampler"


def data_root_options(data_root: Path) -> dict[str, str]:
    """The ``--cfg-options`` that move a KITTI-layout config (training set, its GT database, validation and test
    sets, their metric) onto the dataset prepared under ``data_root``."""
    root = f"{data_root}/"
    return {
        "train_dataloader.dataset.dataset.data_root": root,
        f"{DB_SAMPLER_KEY}.data_root": root,
        f"{DB_SAMPLER_KEY}.info_path": f"{root}kitti_dbinfos_train.pkl",
        "val_dataloader.dataset.data_root": root,
        "test_dataloader.dataset.data_root": root,
        "val_evaluator.ann_file": f"{root}kitti_infos_val.pkl",
        "test_evaluator.ann_file": f"{root}kitti_infos_val.pkl",
    }
