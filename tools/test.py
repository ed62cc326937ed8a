"""Evaluate a trained detector: ``python tools/test.py CONFIG CHECKPOINT [--work-dir D] [--cfg-options ...]``.

Prints the dataset's metric (the KITTI table for KITTI-format data) and can write result files through
the metric's options, e.g. ``--cfg-options test_evaluator.submission_prefix=results/kitti``.
"""

from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone without installing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description="Test (evaluate) a 3D detector")
    parser.add_argument("config", help="config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--work-dir", help="where the evaluation log goes (default: work_dirs/<config name>)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys")
    parser.add_argument("--metrics-json", help="also write the metrics (name -> value) to this JSON file")
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    from mmengine.runner import Runner

    from ada3d.engine import load_config  # also registers checkpoint loading under torch >= 2.6

    cfg = load_config(args.config, args.cfg_options, args.checkpoint)
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    cfg.work_dir = args.work_dir or cfg.get("work_dir") or osp.join(
        "work_dirs", osp.splitext(osp.basename(args.config))[0]
    )
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    if args.metrics_json:
        with open(args.metrics_json, "w") as f:
            json.dump({name: float(value) for name, value in metrics.items()}, f, indent=1)
    return metrics


if __name__ == "__main__":
    main()
