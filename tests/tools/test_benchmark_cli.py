"""tools/benchmark.py sparse runs end to end on a real frame and writes its table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import KITTI_DEMO_ROOT

spec = importlib.util.spec_from_file_location("benchmark_cli", Path("tools/benchmark.py"))
benchmark_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark_cli)


def test_sparse_benchmark_prints_and_appends_a_table(tmp_path, capsys):
    report = tmp_path / "bench.md"
    argv = [
        "sparse",
        "--data-root",
        str(KITTI_DEMO_ROOT),
        "--frames",
        "000076",
        "--repeats",
        "1",
        "--warmup",
        "0",
        "--output",
        str(report),
    ]
    benchmark_cli.main(argv)
    printed = capsys.readouterr().out
    assert "| 000076 | 114380 | 35530 |" in printed
    assert "geomean" in printed and "SECOND SparseEncoder, fp32, batch 1" in printed
    written = report.read_text()
    assert "`python tools/benchmark.py sparse --data-root" in written and "| 000076 |" in written
    assert "--output" not in written
