"""Benchmark tables: one row per batch and engine, geometric means, speed-ups, memory, agreement marks."""

from __future__ import annotations

import torch

from ada3d.benchmark.report import environment, format_table, report
from ada3d.benchmark.runner import BatchResult, EngineResult, ScenarioRun
from ada3d.benchmark.scenarios import build_scenario
from ada3d.benchmark.timing import Measurement


def _ms(median: float, peak: float | None = None) -> Measurement:
    return Measurement(median, median * 0.9, median * 1.1, peak)


def _run(with_memory: bool) -> ScenarioRun:
    peak = 100.0 if with_memory else None
    batches = [
        BatchResult(
            "000001",
            120268,
            40000,
            {
                "ours": EngineResult(_ms(10.0, peak), _ms(30.0, peak), 1e-6),
                "ours+graphs": EngineResult(_ms(2.5, peak), None, 2e-6),
                "spconv": EngineResult(_ms(20.0, peak), _ms(30.0, peak), None),
            },
        ),
        BatchResult(
            "000008",
            122555,
            35986,
            {
                "ours": EngineResult(_ms(40.0, peak), _ms(120.0, peak), 3e-6),
                "ours+graphs": EngineResult(_ms(10.0, peak), None, 5e-3),
                "spconv": EngineResult(_ms(20.0, peak), _ms(60.0, peak), None),
            },
        ),
    ]
    return ScenarioRun(build_scenario("second-kitti"), "fp32", 1, ["ours", "ours+graphs", "spconv"], "spconv", batches)


def test_table_rows_geometric_means_and_speedups():
    lines = format_table(_run(with_memory=True)).splitlines()
    assert lines[0] == (
        "| batch | points | voxels | engine | fwd ms | fwd+bwd ms | fwd peak MB | fwd+bwd peak MB | fwd vs spconv "
        "| fwd+bwd vs spconv | max rel diff vs spconv |"
    )
    assert len(lines) == 2 + 6 + 3
    assert lines[2] == "| 000001 | 120268 | 40000 | ours | 10.0 | 30.0 | 100 | 100 | 2.00x | 1.00x | 1.0e-06 |"
    assert lines[3] == "| 000001 | 120268 | 40000 | ours+graphs | 2.5 | - | 100 | - | 8.00x | - | 2.0e-06 |"
    assert lines[4] == "| 000001 | 120268 | 40000 | spconv | 20.0 | 30.0 | 100 | 100 |  |  |  |"
    # ours: fwd 10 and 40 ms -> 20; fwd+bwd 30 and 120 -> 60; speed-ups 2 and 0.5 -> 1; worst difference
    assert lines[8] == "| geomean |  |  | ours | 20.0 | 60.0 | 100 | 100 | 1.00x | 0.71x | 3.0e-06 |"
    # graphs: 2.5 and 10 ms -> 5 = 4x spconv's 20; the 5e-3 difference is above fp32's tolerance
    assert lines[9] == "| geomean |  |  | ours+graphs | 5.0 | - | 100 | - | 4.00x | - | 5.0e-03 (!) |"
    assert lines[10] == "| geomean |  |  | spconv | 20.0 | 42.4 | 100 | 100 |  |  |  |"


def test_cpu_table_has_no_memory_columns_and_disagreements_are_listed():
    run = _run(with_memory=False)
    header = format_table(run).splitlines()[0]
    assert "peak MB" not in header and "fwd vs spconv" in header
    assert run.disagreements() == ["000008: ours+graphs 5.0e-03"]
    run.precision = "fp32+tf32"  # TF32 is allowed 1e-2
    assert run.disagreements() == []


def test_report_has_title_notes_command_and_table():
    text = report(_run(with_memory=False), environment(torch.device("cpu")), "engines ours, spconv", "python x")
    title, _, notes, _, command, _, *table = text.splitlines()
    assert title.startswith("SECOND SparseEncoder, real KITTI scans, fp32, batch 1 | CPU ")
    assert "torch " in title and title.endswith("| engines ours, spconv")
    assert notes.startswith("Input: KITTI HDL-64E scans") and command == "`python x`"
    assert table[0].startswith("| batch |")
