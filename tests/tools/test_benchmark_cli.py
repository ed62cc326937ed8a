"""tools/benchmark.py sparse runs every scenario end to end on the real demo data and writes its tables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from ada3d.benchmark.scenarios import SCENARIOS
from tests.conftest import KITTI_DEMO_ROOT

spec = importlib.util.spec_from_file_location("benchmark_cli", Path("tools/benchmark.py"))
benchmark_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark_cli)

NUSCENES_DEMO_ROOT = str(Path(KITTI_DEMO_ROOT).parent / "nuscenes")
FAST = ["--repeats", "1", "--warmup", "0"]


def test_cli_knows_every_scenario():
    assert benchmark_cli.SCENARIO_NAMES == tuple(SCENARIOS)


def test_second_kitti_prints_and_appends_a_table(tmp_path, capsys):
    report = tmp_path / "bench.md"
    argv = ["sparse", "--data-root", str(KITTI_DEMO_ROOT), "--frames", "000076", *FAST, "--output", str(report)]
    assert benchmark_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 000076 | 114380 | 35530 | ours |" in printed
    assert (
        "| geomean |  |  | ours |" in printed and "SECOND SparseEncoder, real KITTI scans, fp32, batch 1 |" in printed
    )
    written = report.read_text()
    assert "`python tools/benchmark.py sparse --data-root" in written and "| 000076 |" in written
    assert "Input: KITTI HDL-64E scans" in written and "--output" not in written


def test_nuscenes_scenarios_run_on_the_real_keyframe(tmp_path, capsys):
    report = tmp_path / "bench.md"
    argv = [
        "sparse",
        "--scenario",
        "centerpoint-nus",
        "centerpoint-nus-multisweep",
        "--nuscenes-root",
        NUSCENES_DEMO_ROOT,
        "--sweeps",
        "2",
        *FAST,
        "--output",
        str(report),
    ]
    assert benchmark_cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "| 1532402927647951 | 34688 | 17509 | ours |" in printed
    assert "| 1532402927647951 + 1 sweeps | 69376 | 33496 | ours |" in printed
    assert "CenterPoint VoxelResBackBone8x, nuScenes keyframe + 1 synthetic sweeps, fp32, batch 1 |" in printed
    assert report.read_text().count("| geomean |") == 2


def test_bad_arguments_are_refused(capsys):
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args(["sparse", "--scenario", "pointpillars"])
    with pytest.raises(SystemExit):
        benchmark_cli.parse_args(["sparse", "--batch-size", "0"])
    assert benchmark_cli.parse_args(["sparse", "--scenario", "all"]).scenario == list(SCENARIOS)
    with pytest.raises(ValueError, match="CUDA graphs need a CUDA device"):
        benchmark_cli.main(["sparse", "--frames", "000076", "--cuda-graphs", *FAST])
