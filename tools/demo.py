"""The end-to-end demo on the embedded default dataset: simulate a small KITTI-format set with our
LiDAR simulator, train the CPU SECOND config on it, evaluate with the official KITTI protocol.

    python tools/demo.py [--data data/synthkitti-demo] [--frames 400] [--epochs E] [--work-dir D]

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
    parser.add_argument("--data", default="data/synthkitti-demo", help="where the synthetic dataset is written")
    parser.add_argument("--frames", type=int, default=400, help="frames to simulate (3/4 train, 1/4 val)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the config's)")
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
    data_options = [f"data_root={args.data}/", f"train_dataloader.dataset.data_root={args.data}/",
                    f"val_dataloader.dataset.data_root={args.data}/", f"test_dataloader.dataset.data_root={args.data}/",
                    f"val_evaluator.ann_file={args.data}/kitti_infos_val.pkl",
                    f"test_evaluator.ann_file={args.data}/kitti_infos_val.pkl"]  # fmt: skip
    if args.epochs is not None:
        data_options.append(f"train_cfg.max_epochs={args.epochs}")
    checkpoint = osp.join(args.work_dir, "last_checkpoint")
    if not osp.isfile(checkpoint):
        run("train", [python, f"{root}/tools/train.py", args.config, "--work-dir", args.work_dir,
                      "--cfg-options", *data_options])  # fmt: skip
    with open(checkpoint) as f:
        weights = f.read().strip()
    run("test", [python, f"{root}/tools/test.py", args.config, weights, "--work-dir", args.work_dir,
                 "--cfg-options", *data_options])  # fmt: skip


if __name__ == "__main__":
    main()
