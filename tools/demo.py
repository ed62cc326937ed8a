"""The end-to-end demo on the embedded default dataset: simulate a small KITTI-format set with our
LiDAR simulator, train the CPU SECOND config on it, evaluate with the official KITTI protocol; then Ada3D's
three stages on top of it (SP-BN sparse BEV backbone, importance predictor, fine-tune with dropping) and a
side-by-side of what Ada3D saved (BEV density, FLOPs, measured time) against the AP it kept.

    python tools/demo.py [--data data/synthkitti] [--frames 400] [--iters N] [--work-dir D] [--no-ada3d]

Each step is the command a user would run by hand (printed before it runs); steps whose output
already exists are skipped, so a second run only re-evaluates.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import shlex
import subprocess
import sys
import time

CONFIG = "configs/second/second_hv_secfpn_tiny_synthkitti-3d-3class.py"
ADA3D_STAGES = [f"configs/ada3d/ada3d_second_hv_secfpn_tiny_synthkitti-3d-3class_stage{s}.py" for s in (1, 2, 3)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Simulate, train and evaluate SECOND on synthetic KITTI")
    parser.add_argument("--data", default="data/synthkitti", help="the synthetic dataset (the config's data root)")
    parser.add_argument("--frames", type=int, default=400, help="frames to simulate (3/4 train, 1/4 val)")
    parser.add_argument("--seed", type=int, default=0, help="simulator seed")
    parser.add_argument("--iters", type=int, default=None, help="training iterations (default: the config's 600)")
    parser.add_argument("--work-dir", default="work_dirs/demo", help="logs and checkpoints")
    parser.add_argument("--config", default=CONFIG)
    parser.add_argument("--no-ada3d", action="store_true", help="stop after the dense SECOND")
    parser.add_argument("--bench-frames", type=int, default=8, help="validation frames the Ada3D benchmark times")
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
    dense = train(python, root, args.config, osp.join(args.work_dir, "second"), options)
    dense_metrics = test(python, root, args.config, dense, osp.join(args.work_dir, "second"), options)
    if args.no_ada3d:
        return
    previous = dense
    for stage, config in enumerate(ADA3D_STAGES, start=1):
        previous = train(python, root, config, osp.join(args.work_dir, f"ada3d_stage{stage}"),
                         [f"load_from={previous}"], step=f"Ada3D stage {stage}")  # fmt: skip
    ada3d_metrics = test(python, root, ADA3D_STAGES[-1], previous, osp.join(args.work_dir, "ada3d_stage3"), [])
    report = osp.join(args.work_dir, "ada3d_benchmark.json")
    run("benchmark", [python, f"{root}/tools/benchmark.py", "ada3d", ADA3D_STAGES[-1], previous,
                      "--dense-config", args.config, "--dense-checkpoint", dense, "--data", "synthetic-val",
                      "--frames", str(args.bench_frames), "--json", report])  # fmt: skip
    print_summary(dense_metrics, ada3d_metrics, report)


def train(python: str, root: str, config: str, work_dir: str, options: list[str], step: str = "train") -> str:
    """Train ``config`` into ``work_dir`` unless it already holds a final checkpoint; return the checkpoint."""
    checkpoint = osp.join(work_dir, "last_checkpoint")
    options = [*options, "train_cfg.val_begin=1000000000"]  # the demo evaluates once, after training
    if not osp.isfile(checkpoint):
        run(step, [python, f"{root}/tools/train.py", config, "--work-dir", work_dir,
                   "--cfg-options", *options])  # fmt: skip
    with open(checkpoint) as f:
        return f.read().strip()


def test(python: str, root: str, config: str, weights: str, work_dir: str, options: list[str]) -> dict:
    """Evaluate ``weights`` with the official KITTI protocol (prints the table); return the metrics."""
    metrics = osp.join(work_dir, "test_metrics.json")
    run(f"test {osp.basename(config)}", [python, f"{root}/tools/test.py", config, weights, "--work-dir", work_dir,
                                         "--metrics-json", metrics,
                                         *(["--cfg-options", *options] if options else [])])  # fmt: skip
    with open(metrics) as f:
        return json.load(f)


def print_summary(dense_metrics: dict, ada3d_metrics: dict, report: str) -> None:
    """What Ada3D saved (BEV density, FLOPs, measured ms) next to the AP it kept, one line per model."""
    with open(report) as f:
        models = json.load(f)["sources"]["synthetic-val"]
    key = "Kitti metric/{}_3D_AP40_moderate"
    print("\n== Ada3D vs dense SECOND (tiny CPU config; AP on the synthetic validation split, "
          "time and density on its first frames)")
    print("| model | Car 3D AP_R40 mod | 3-class 3D AP_R40 mod | BEV pixels run | 3D ms | 2D ms | GFLOPs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for metrics, model in zip((dense_metrics, ada3d_metrics), models):
        summary = model["summary"]
        bev = next(s for s in summary["stages"] if s["stage"] == "bev")
        print(f"| {model['label']} | {metrics[key.format('Car')]:.1f} | {metrics[key.format('Overall')]:.1f} | "
              f"{100 * bev['kept_of_grid']:.1f}% of the map | {summary['median_ms']['3d']:.0f} | "
              f"{summary['median_ms']['2d']:.0f} | {summary['flops']['total'] / 1e9:.1f} |")


if __name__ == "__main__":
    main()
