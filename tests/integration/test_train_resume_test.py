"""End to end, as a user runs it: simulate a tiny KITTI-format set, train the tiny SECOND config with
tools/train.py, kill the run after its first checkpoint, resume it with --resume, and evaluate the
checkpoint with tools/test.py.

The resumed run must continue at the saved iteration and end with the weights and optimizer state of
an uninterrupted run with the same seed (one data-loading process, CPU: the runs are deterministic).
"""

from __future__ import annotations

import math
import re
import subprocess
import time
from pathlib import Path

import pytest
import torch

from tests.integration.commands import REPO_ROOT, data_root_options, run, tool

TINY_CONFIG = REPO_ROOT / "configs" / "second" / "second_hv_secfpn_tiny_synthkitti-3d-3class.py"
MAX_ITERS = 4
CHECKPOINT_INTERVAL = 2
SEED = 1  # the simulator's seed: its four frames hold Cars, Pedestrians and a Cyclist for the GT sampler
CLASSES = ("Pedestrian", "Cyclist", "Car")


def _cfg_options(data_root: Path) -> list[str]:
    """The tiny config on ``data_root``: 4 iterations of one sample, a checkpoint every 2, one process."""
    options = {
        **data_root_options(data_root),
        "train_dataloader.batch_size": 1,
        "train_cfg.max_iters": MAX_ITERS,
        "train_cfg.val_interval": MAX_ITERS,
        "param_scheduler.0.total_steps": MAX_ITERS,
        "default_hooks.checkpoint.interval": CHECKPOINT_INTERVAL,
        "default_hooks.logger.interval": 1,
        "randomness.seed": 0,
    }
    for loader in ("train_dataloader", "val_dataloader", "test_dataloader"):
        options |= {f"{loader}.num_workers": 0, f"{loader}.persistent_workers": False}
    return ["--cfg-options", *(f"{key}={value}" for key, value in options.items())]


def _checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def _train_until_first_checkpoint_then_kill(work_dir: Path, options: list[str]) -> None:
    """Start tools/train.py, and SIGKILL it as soon as it has written its first checkpoint."""
    log = (work_dir.parent / f"{work_dir.name}.log").open("w")
    process = subprocess.Popen(tool("train.py", str(TINY_CONFIG), "--work-dir", str(work_dir), *options),
                               cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    try:
        while not (work_dir / "last_checkpoint").exists():
            assert process.poll() is None, f"training ended before its first checkpoint, see {log.name}"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        process.kill()
        process.wait()
        log.close()


@pytest.fixture(scope="module")
def synthetic_kitti(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthkitti")
    run(tool("create_data.py", "synthkitti", "--out", str(root), "--frames", "4", "--seed", str(SEED)))
    return root


def test_a_killed_run_resumes_where_it_was_and_its_checkpoint_evaluates(synthetic_kitti, tmp_path):
    options = _cfg_options(synthetic_kitti)
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    run(tool("train.py", str(TINY_CONFIG), "--work-dir", str(uninterrupted), *options))

    _train_until_first_checkpoint_then_kill(interrupted, options)
    assert (interrupted / "last_checkpoint").read_text().strip().endswith(f"iter_{CHECKPOINT_INTERVAL}.pth")
    assert not (interrupted / f"iter_{MAX_ITERS}.pth").exists()  # it was stopped mid-run
    log = run(tool("train.py", str(TINY_CONFIG), "--work-dir", str(interrupted), "--resume", *options))
    assert f"resumed epoch: 0, iter: {CHECKPOINT_INTERVAL}" in log
    resumed_iterations = [int(i) for i in re.findall(rf"Iter\(train\) \[\s*(\d+)/{MAX_ITERS}\]", log)]
    assert resumed_iterations == list(range(CHECKPOINT_INTERVAL + 1, MAX_ITERS + 1))

    reference, resumed = (_checkpoint(work / f"iter_{MAX_ITERS}.pth") for work in (uninterrupted, interrupted))
    assert resumed["meta"]["iter"] == reference["meta"]["iter"] == MAX_ITERS
    assert reference["state_dict"].keys() == resumed["state_dict"].keys()
    for name, value in reference["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], value, rtol=1e-5, atol=1e-6, msg=name)
    for state, reference_state in zip(resumed["optimizer"]["state"].values(),
                                      reference["optimizer"]["state"].values()):
        assert float(state["step"]) == MAX_ITERS
        torch.testing.assert_close(state["exp_avg"], reference_state["exp_avg"], rtol=1e-5, atol=1e-7)

    output = run(tool("test.py", str(TINY_CONFIG), str(interrupted / f"iter_{MAX_ITERS}.pth"),
                        "--work-dir", str(tmp_path / "test"), *options))
    metrics = dict(re.findall(r"Kitti metric/(\w+): (\S+)", output))
    expected = {f"{name}_{kind}_AP{points}_{level}" for name in (*CLASSES, "Overall")
                for kind in ("2D", "BEV", "3D", "AOS") for points in (11, 40) for level in ("easy", "moderate", "hard")}
    assert expected <= metrics.keys(), sorted(expected - metrics.keys())[:5]
    values = [float(value) for value in metrics.values()]
    assert all(math.isfinite(value) and 0.0 <= value <= 100.0 for value in values)
    assert "Car AP40@0.70, 0.70, 0.70:" in output and "----------- AP40 Results ------------" in output  # the table
