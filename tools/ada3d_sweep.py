"""Accuracy vs kept density of an Ada3D detector, per cell-selection strategy.

    python tools/ada3d_sweep.py CONFIG CHECKPOINT --ratios 1.0 0.6 0.4 0.25 0.15 \\
        --strategies predictor random distance [--ratios-3d same|fixed] [--ratio-bev same|fixed] [--out DIR] \
        [--data-root D]

For every strategy and keep ratio (applied to the BEV pixel drop and / or the 3D drops: ``--ratio-bev``,
``--ratios-3d``): ``model.set_keep_ratios(...)``, then the test set through mmengine's test
loop and the config's metric (KittiMetric: AP in percent). The BEV density actually kept (kept cells / all cells
of the importance grid, and kept / occupied) is read from the model's ``last_pruning`` records over the whole
set. Writes ``DIR/sweep.json`` and ``DIR/sweep.png`` (Car and 3-class mean moderate 3D AP_R40 vs kept BEV density,
one line per strategy): the learned predictor should keep accuracy at densities where random and
distance-based selection lose it.
"""

from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone without installing

STRATEGIES = ("predictor", "random", "distance")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="Ada3D detector config")
    parser.add_argument("checkpoint", help="its checkpoint")
    parser.add_argument("--ratios", nargs="+", type=float, default=[1.0, 0.6, 0.4, 0.25, 0.15],
                        help="BEV keep ratios (fractions of the occupied cells kept)")
    parser.add_argument("--strategies", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument("--ratios-3d", choices=["same", "fixed"], default="same",
                        help="same: every 3D drop stage keeps each ratio; fixed: the config's 3D ratios")
    parser.add_argument("--ratio-bev", choices=["same", "fixed"], default="same",
                        help="same: the BEV pixel drop keeps each ratio; fixed: the config's BEV ratio (with "
                        "--ratios-3d same: sweep the 3D drops alone)")
    parser.add_argument("--out", help="output folder (default: work_dirs/ada3d_sweep/<config name>)")
    parser.add_argument("--data-root", help="dataset root replacing the config's test data root (and the metric's "
                        "annotation file, the test dataset's ann_file under it)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction, help="override config keys")
    args = parser.parse_args(argv)
    if any(not 0 < ratio <= 1 for ratio in args.ratios):
        parser.error(f"--ratios must lie in (0, 1], got {args.ratios}")
    if args.ratios_3d == args.ratio_bev == "fixed":
        parser.error("--ratios-3d fixed with --ratio-bev fixed leaves nothing to sweep")
    return args


def build_runner(args: argparse.Namespace, out: Path):
    from mmengine.runner import Runner

    from ada3d.engine import load_config  # also registers checkpoint loading under torch >= 2.6

    cfg = load_config(args.config, args.cfg_options, args.checkpoint)
    if args.data_root:
        dataset = cfg.test_dataloader.dataset
        dataset.data_root = args.data_root
        cfg.test_evaluator.ann_file = osp.join(args.data_root, dataset.ann_file)
    cfg.load_from = args.checkpoint
    cfg.work_dir = str(out / "work_dir")
    cfg.launcher = "none"
    cfg.visualizer = dict(cfg.visualizer, name=f"ada3d_sweep {out.resolve()}")  # one instance per output folder
    return Runner.from_cfg(cfg), cfg


def main(argv: list[str] | None = None) -> list:
    args = parse_args(argv)
    from ada3d.benchmark.keep_ratio_sweep import plot, sweep

    out = Path(args.out or osp.join("work_dirs", "ada3d_sweep", osp.splitext(osp.basename(args.config))[0]))
    out.mkdir(parents=True, exist_ok=True)
    runner, cfg = build_runner(args, out)
    points = sweep(runner, cfg, args.ratios, args.strategies, args.ratios_3d, args.ratio_bev)
    summary = dict(config=args.config, checkpoint=args.checkpoint, ratios_3d=args.ratios_3d, ratio_bev=args.ratio_bev,
                   points=[asdict(point) for point in points])
    (out / "sweep.json").write_text(json.dumps(summary, indent=2))
    plot(points, out / "sweep.png", f"{osp.basename(args.config)}: accuracy vs kept BEV density")
    print(f"wrote {out / 'sweep.json'} and {out / 'sweep.png'}")
    return points


if __name__ == "__main__":
    main()
