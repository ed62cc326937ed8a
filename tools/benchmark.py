"""Benchmarks. ``python tools/benchmark.py sparse --help`` for the sparse-encoder benchmark,
``python tools/benchmark.py ada3d --help`` for dense vs Ada3D detectors."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SCENARIO_NAMES = ("second-kitti", "centerpoint-nus", "centerpoint-nus-multisweep")  # ada3d.benchmark.scenarios


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sparse = commands.add_parser(
        "sparse",
        help="sparse 3D encoders on real LiDAR data: ours (eager / CUDA graphs) vs spconv v2",
        description="Time sparse 3D encoders on real LiDAR scans: inference (forward incl. kernel-map building) "
        "and training (forward + backward), median ms, peak memory, speed-up over spconv v2 with the same "
        "weights and inputs, outputs cross-checked. One markdown table per scenario x dtype x batch size.",
    )
    sparse.add_argument(
        "--scenario",
        nargs="+",
        default=["second-kitti"],
        choices=[*SCENARIO_NAMES, "all"],
        help="second-kitti: SECOND SparseEncoder on KITTI scans; centerpoint-nus: CenterPoint VoxelResBackBone8x "
        "on the nuScenes keyframe; centerpoint-nus-multisweep: the keyframe merged with synthetic sweeps",
    )
    sparse.add_argument("--data-root", default="demo/data/kitti", help="KITTI root with training/velodyne/*.bin")
    sparse.add_argument("--frames", nargs="*", help="KITTI frame ids (default: every .bin)")
    sparse.add_argument(
        "--nuscenes-root", default="demo/data/nuscenes", help="nuScenes root with samples/LIDAR_TOP/*.pcd.bin"
    )
    sparse.add_argument("--sweeps", type=int, default=10, help="frames merged in the multi-sweep scenario")
    sparse.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    sparse.add_argument("--dtype", nargs="+", default=["fp32"], choices=["fp32", "fp16", "bf16"])
    sparse.add_argument("--batch-size", nargs="+", type=int, default=[1], help="samples per batch (several allowed)")
    sparse.add_argument("--tf32", action="store_true", help="allow TF32 for fp32 in every engine (torch and spconv)")
    sparse.add_argument("--cuda-graphs", action="store_true", help="also time our inference through CUDA graphs")
    sparse.add_argument("--compare-spconv", action="store_true", help="also time spconv v2 with the same weights")
    sparse.add_argument("--threads", type=int, default=None, help="CPU threads (sets OMP_NUM_THREADS too)")
    sparse.add_argument("--warmup", type=int, default=2)
    sparse.add_argument("--repeats", type=int, default=5)
    sparse.add_argument(
        "--dataflow",
        default="default",
        help="force one dataflow on every conv: gather_scatter, implicit_gemm or implicit_gemm_sorted "
        "(default: each layer's default)",
    )
    sparse.add_argument("--profile", action="store_true", help="also print a torch-profiler table of one inference")
    sparse.add_argument("--output", help="append the tables (with environment and command) to this markdown file")
    _add_ada3d_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "ada3d":
        if (args.dense_config is None) != (args.dense_checkpoint is None):
            parser.error("--dense-config and --dense-checkpoint go together")
        if args.frames_per_source < 1 or args.repeats < 1 or args.warmup < 0:
            parser.error("--frames and --repeats must be >= 1, --warmup >= 0")
        if args.cuda_graphs and not args.device.startswith("cuda"):
            parser.error(f"--cuda-graphs needs a CUDA --device, got {args.device!r}")
        if args.input_ceiling and not args.dense_config:
            parser.error("--input-ceiling times the dense model: give --dense-config and --dense-checkpoint")
        if args.input_ceiling and not all(0.0 < share <= 1.0 for share in args.input_ceiling):
            parser.error(f"--input-ceiling shares must lie in (0, 1], got {args.input_ceiling}")
        if args.plot_dir and not args.input_ceiling:
            parser.error("--plot-dir goes with --input-ceiling")
        ratios = [*(args.keep_ratios_3d or []), *([] if args.keep_ratio_bev is None else [args.keep_ratio_bev])]
        if not all(0.0 < ratio <= 1.0 for ratio in ratios):
            parser.error(f"keep ratios must lie in (0, 1], got {ratios}")
        return args
    if "all" in args.scenario:
        args.scenario = list(SCENARIO_NAMES)
    if args.sweeps < 1 or min(args.batch_size) < 1:
        parser.error("--sweeps and --batch-size must be >= 1")
    return args


def _add_ada3d_parser(commands) -> None:
    from mmengine.config import DictAction

    ada3d = commands.add_parser(
        "ada3d",
        help="dense vs Ada3D detectors: kept density per drop stage, FLOPs, latency, peak memory",
        description="Benchmark an (Ada3D) detector, optionally beside a dense one, on the same frames: voxel and BEV "
        "density per drop stage, ground-truth cells dropped, FLOPs of the 3D part (encode_3d), the 2D part "
        "(encode_2d) and the head, median latency of encode_3d / encode_2d / end to end, peak memory (CUDA). "
        "Prints a markdown report per data source.",
    )
    ada3d.add_argument("config", help="detector config (e.g. configs/ada3d/...)")
    ada3d.add_argument("checkpoint", help="its checkpoint")
    ada3d.add_argument("--dense-config", help="a dense reference detector, shown first (ratios are relative to it)")
    ada3d.add_argument("--dense-checkpoint", help="the dense detector's checkpoint")
    ada3d.add_argument(
        "--data",
        default="both",
        choices=["synthetic-val", "real-kitti", "both"],
        help="synthetic-val: the val dataloader of CONFIG (the synthetic split of the synthkitti configs); "
        "real-kitti: the KITTI scans under --kitti-root",
    )
    ada3d.add_argument(
        "--kitti-root", default="demo/data/kitti", help="KITTI root with training/{velodyne,label_2,calib}"
    )
    ada3d.add_argument("--frames", dest="frames_per_source", type=int, default=20, help="at most N frames per source")
    ada3d.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    ada3d.add_argument("--threads", type=int, default=None, help="CPU threads (sets OMP_NUM_THREADS too)")
    ada3d.add_argument("--cuda-graphs", action="store_true",
                       help="also time encode_3d / encode_2d replayed as CUDA graphs (GraphedDetector), dense and "
                       "Ada3D alike, beside the eager numbers (needs a CUDA --device)")
    ada3d.add_argument("--tf32", choices=["default", "on", "off"], default="default",
                       help="fp32 tensor-core math: 'default' keeps torch's switches (cuDNN's convolutions, i.e. dense "
                       "2D backbones, in TF32; matmuls, i.e. sparse_ops' Triton GEMMs, in IEEE fp32); 'on' / 'off' "
                       "set both, so dense and sparse layers compute at the same precision")
    ada3d.add_argument("--tune", action="store_true",
                       help="before timing, autotune every model's sparse convs (sparse_ops.tune, inference, on the "
                       "first frame of each source) and let cuDNN pick its fastest dense convs (cudnn.benchmark), so "
                       "dense and Ada3D layers both run tuned")
    ada3d.add_argument("--warmup", type=int, default=2)
    ada3d.add_argument("--repeats", type=int, default=5)
    ada3d.add_argument("--cfg-options", nargs="+", action=DictAction, default=None,
                       help="override keys of both configs, e.g. val_dataloader.dataset.data_root=data/synthkitti/")
    ada3d.add_argument("--keep-ratios-3d", nargs="+", type=float, metavar="R",
                       help="the Ada3D model's keep ratio at each of its 3D drop stages (model.adaptive.drop_3d_stages "
                       "of CONFIG), e.g. 0.4 for a config that drops before the stem: to time other ratios without a "
                       "config per ratio (--cfg-options would reach the dense model too)")
    ada3d.add_argument("--keep-ratio-bev", type=float, metavar="R", help="the Ada3D model's BEV keep ratio (as above)")
    ada3d.add_argument("--profile", action="store_true",
                       help="also print torch-profiler tables of the 3D and 2D parts of each model on the first frame "
                       "of each source (through CUDA graphs with --cuda-graphs)")
    ada3d.add_argument("--input-ceiling", nargs="+", type=float, metavar="SHARE",
                       help="also time the dense model's 3D part on these shares of the input voxel columns (cells "
                       "of the importance grid kept at random, seeded): the ceiling of any voxel dropping, e.g. "
                       "1.0 0.8 0.6 0.4 0.25 (needs --dense-config)")
    ada3d.add_argument("--plot-dir", help="with --input-ceiling: save its plot here (ada3d_input_ceiling_<data>.png)")
    ada3d.add_argument("--output", help="append the markdown report to this file (e.g. docs/benchmarks.md)")
    ada3d.add_argument("--json", help="write every number (summaries and per frame) to this JSON file")


def _without_output(words: list[str]) -> list[str]:
    """The command-line words minus ``--output FILE`` and ``--json FILE`` (where results were written does not
    reproduce them)."""
    kept, skip = [], False
    for word in words:
        if skip or word.startswith(("--output=", "--json=")):
            skip = False
        elif word in ("--output", "--json"):
            skip = True
        else:
            kept.append(word)
    return kept


def _with_keep_ratios(model, label: str, args: argparse.Namespace) -> str:
    """Apply ``--keep-ratios-3d`` / ``--keep-ratio-bev`` to ``model``; its label, with the ratios if they were given.

    Raises:
        ValueError: if the model has no ``set_keep_ratios`` (not an Ada3D detector), or for a wrong number of 3D
            ratios (one per drop stage).
    """
    if args.keep_ratios_3d is None and args.keep_ratio_bev is None:
        return label
    if not callable(getattr(model, "set_keep_ratios", None)):
        raise ValueError(f"{args.config}: {type(model).__name__} has no set_keep_ratios(); --keep-ratios-3d and "
                         "--keep-ratio-bev need an Ada3D detector (a config under configs/ada3d/)")  # fmt: skip
    model.set_keep_ratios(keep_ratios_3d=args.keep_ratios_3d, keep_ratio_bev=args.keep_ratio_bev)
    settings = [f"3D {' / '.join(f'{r:g}' for r in args.keep_ratios_3d)}"] if args.keep_ratios_3d else []
    settings += [] if args.keep_ratio_bev is None else [f"BEV {args.keep_ratio_bev:g}"]
    return f"{label} [keep {', '.join(settings)}]"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:  # before torch starts its thread pools
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    command = "python tools/benchmark.py " + " ".join(_without_output(argv if argv is not None else sys.argv[1:]))
    return _ada3d(args, command) if args.command == "ada3d" else _sparse(args, command)


def _ada3d(args: argparse.Namespace, command: str) -> int:
    import json

    import torch

    from ada3d.benchmark.ada3d_bench import (
        benchmark_model,
        class_names,
        load_detector,
        profile_parts,
        report,
        run_to_json,
        tune_detector,
    )
    from ada3d.benchmark.detector_frames import dataloader_frames, kitti_frames
    from ada3d.benchmark.engines import set_tf32
    from ada3d.benchmark.report import environment

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.tf32 != "default":
        set_tf32(args.tf32 == "on")
    device = torch.device(args.device)
    models = []  # (model, label), the dense reference first
    if args.dense_config:
        dense, _ = load_detector(args.dense_config, args.dense_checkpoint, device, args.cfg_options)
        models.append((dense, f"{Path(args.dense_config).stem} (dense)"))
    model, cfg = load_detector(args.config, args.checkpoint, device, args.cfg_options)
    models.append((model, _with_keep_ratios(model, Path(args.config).stem, args)))
    classes = class_names(cfg)  # label order, for the real frames' boxes and the per-class counts
    sources = ["synthetic-val", "real-kitti"] if args.data == "both" else [args.data]
    settings = f"median of {args.repeats} after {args.warmup} warm-up runs per frame"
    results = dict(environment=environment(device), command=command, settings=settings, sources={})
    for source in sources:
        if source == "synthetic-val":
            frames = dataloader_frames(cfg.val_dataloader, args.frames_per_source)
        else:
            frames = kitti_frames(args.kitti_root, classes)[: args.frames_per_source]
        if args.tune:
            torch.backends.cudnn.benchmark = True
            for model, label in models:
                print(f"\nAutotuning {label} on {frames[0].name} ({source}):")
                print(tune_detector(model, frames[0]).format(), flush=True)
        runs = [benchmark_model(model, frames, label, source, device, args.warmup, args.repeats, args.cuda_graphs,
                                classes) for model, label in models]
        text = report(runs, environment(device), settings, command)
        print(f"\n{text}", flush=True)
        results["sources"][source] = [run_to_json(run) for run in runs]
        if args.input_ceiling:
            _input_ceiling(args, models, runs, frames, source, device, results)
        if args.profile:
            for model, label in models:
                print(f"\nProfile of {label} on {frames[0].name} ({source}):")
                print(profile_parts(model, frames[0], device, args.cuda_graphs), flush=True)
        if args.output:
            with open(args.output, "a") as f:
                f.write(f"\n{text}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def _input_ceiling(args, models: list, runs: list, frames: list, source: str, device, results: dict) -> None:
    """The dense model's 3D part on shares of the input columns: table, JSON and (``--plot-dir``) plot."""
    from dataclasses import asdict

    from ada3d.benchmark.input_ceiling import ceiling_table, input_ceiling, plot_ceiling, stem_voxel_share

    points = input_ceiling(models[0][0], frames, args.input_ceiling, device, args.warmup, args.repeats,
                           args.cuda_graphs)  # fmt: skip
    part = "3d_graphs" if args.cuda_graphs else "3d"
    mode = "CUDA graphs" if args.cuda_graphs else "eager"
    print(f"\nDense 3D part ({mode}) on shares of the input columns, {source}:\n{ceiling_table(points)}", flush=True)
    results.setdefault("input_ceiling", {})[source] = [asdict(p) for p in points]
    if args.plot_dir:
        marks = {}
        for (_, label), run in zip(models, runs):
            share = stem_voxel_share(run.stage_totals())
            marks[f"{label} ({share:.0%} of the input voxels at the stem)"] = (share, run.mean_ms(part))
        path = Path(args.plot_dir) / f"ada3d_input_ceiling_{source}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_ceiling(points, path, f"{source}: 3D part vs input voxels kept ({mode}, {device})", marks)
        print(f"plot: {path}")


def _sparse(args: argparse.Namespace, command: str) -> int:
    import torch

    from ada3d.benchmark.engines import build_engines, set_dataflow
    from ada3d.benchmark.inputs import voxelize_batch
    from ada3d.benchmark.report import environment, report
    from ada3d.benchmark.runner import DTYPES, profile_inference, run_scenario
    from ada3d.benchmark.scenarios import DataOptions, build_scenario
    from sparse_ops.conv import ConvConfig

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cpu" and args.compare_spconv and os.environ.get("OMP_NUM_THREADS") != "1":
        print(
            "warning: spconv's CPU kernels race with more than one OpenMP thread and return wrong values; "
            "use --threads 1 for a valid comparison",
            file=sys.stderr,
        )
    data = DataOptions(args.data_root, tuple(args.frames) if args.frames else None, args.nuscenes_root, args.sweeps)
    scenarios = [build_scenario(name, data) for name in args.scenario]
    config = None if args.dataflow == "default" else ConvConfig(args.dataflow)
    disagreements = []
    for scenario in scenarios:
        for dtype in args.dtype:
            encoder = scenario.build_encoder(device, DTYPES[dtype])
            set_dataflow(encoder, config)
            engines = build_engines(encoder, args.cuda_graphs, args.compare_spconv)
            settings = (
                f"engines {', '.join(e.name for e in engines)}, dataflow {args.dataflow}, "
                f"median of {args.repeats} after {args.warmup} warm-up runs"
            )
            for batch_size in args.batch_size:
                run = run_scenario(scenario, engines, device, dtype, batch_size, args.warmup, args.repeats, args.tf32)
                text = report(run, environment(device), settings, command)
                print(f"\n{text}", flush=True)
                disagreements += [
                    f"{scenario.name} {run.precision} batch {batch_size}, {d}" for d in run.disagreements()
                ]
                if args.profile:
                    name, clouds = scenario.batches(batch_size)[0]
                    batch = voxelize_batch(name, clouds, scenario.voxelization, device)
                    print(f"Profile of one {engines[0].name} inference on {name}:")
                    print(profile_inference(engines[0], batch, DTYPES[dtype], device))
                if args.output:
                    with open(args.output, "a") as f:
                        f.write(f"\n{text}")
    if disagreements:
        print(
            f"error: {len(disagreements)} output(s) disagree with the reference engine beyond the dtype's tolerance "
            "(marked (!) in the tables):\n  " + "\n  ".join(disagreements),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
