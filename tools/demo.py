"""The end-to-end demo on the embedded default dataset: simulate a small KITTI-format set with our
LiDAR simulator, train the CPU SECOND config on it, evaluate with the official KITTI protocol.

    python tools/demo.py [--data data/synthkitti] [--frames 400] [--iters N] [--work-dir D]

Each step is the command a user would run by hand (printed before it runs); steps whose output
already exists are skipped, so a second run only re-evaluates.
"""

from __future__ import annotations

import argparse
import os.path as osp
import shlex
import subprocess
import sys
import time

CONFIG = "configs/second/second_hv_secfpn_tiny_synthkitti-3d-3class.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Simulate, train and evaluate SECOND on synthetic KITTI")
    parser.add_argument("--data", default="data/synthkitti", help="the synthetic dataset (the config's data root)")
    parser.add_argument("--frames", type=int, default=400, help="frames to simulate (3/4 train, 1/4 val)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--iters", type=int, default=None, help="training iterations (default: the config's 300)")
    parser.add_argument("--work-dir", default="work_dirs/demo", help="logs and checkpoints")
    parser.add_argument("--config", default=CONFIG)
    return parser.parse_args(argv)


def run(step: str, command: list[str]) -> None:
    print(f"\n== {step}: {shlex.join(command)}", flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"== {step} took {time.perf_counter() - start:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    python = sys.executable
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    if not osp.isfile(osp.join(args.data, "kitti_infos_val.pkl")):
        run("simulate", [python, f"{root}/tools/create_data.py", "synthkitti", "--out", args.data,
                         "--frames", str(args.frames), "--seed", str(args.seed)])  # fmt: skip
    options = []
    if args.iters is not None:  # the schedule, validation and checkpoint follow the iteration count
        options += [f"train_cfg.max_iters={args.iters}", f"train_cfg.val_interval={args.iters}",
                    f"param_scheduler.0.total_steps={args.iters}", f"default_hooks.checkpoint.interval={args.iters}"]
    checkpoint = osp.join(args.work_dir, "last_checkpoint")
    if not osp.isfile(checkpoint):
        run("train", [python, f"{root}/tools/train.py", args.config, "--work-dir", args.work_dir,
                      *(["--cfg-options", *options] if options else [])])  # fmt: skip
    with open(checkpoint) as f:
        weights = f.read().strip()
    run("test", [python, f"{root}/tools/test.py", args.config, weights, "--work-dir", args.work_dir,
                 *(["--cfg-options", *options] if options else [])])  # fmt: skip


if __name__ == "__main__":
    main()
