"""Benchmarks. ``python tools/benchmark.py sparse --help`` for the sparse-encoder benchmark."""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    sparse = commands.add_parser("sparse", help="SECOND SparseEncoder on real KITTI frames (ours vs spconv v2)")
    sparse.add_argument("--data-root", default="demo/data/kitti", help="KITTI root with training/velodyne/*.bin")
    sparse.add_argument("--frames", nargs="*", help="frame ids (default: every .bin)")
    sparse.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    sparse.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    sparse.add_argument("--batch-size", type=int, default=1, help="frames per batch")
    sparse.add_argument("--threads", type=int, default=None, help="CPU threads (sets OMP_NUM_THREADS too)")
    sparse.add_argument("--warmup", type=int, default=2)
    sparse.add_argument("--repeats", type=int, default=5)
    sparse.add_argument(
        "--dataflow",
        default="default",
        help="force one dataflow on every conv: gather_scatter, implicit_gemm or implicit_gemm_sorted "
        "(default: each layer's default)",
    )
    sparse.add_argument("--compare-spconv", action="store_true", help="also time spconv v2 with the same weights")
    sparse.add_argument("--profile", action="store_true", help="also print a torch-profiler table of one inference")
    sparse.add_argument("--output", help="append the table (with device and command) to this markdown file")
    return parser.parse_args(argv)


def _without_output(words: list[str]) -> list[str]:
    """The command-line words minus ``--output FILE`` (where a table was written does not reproduce it)."""
    kept, skip = [], False
    for word in words:
        if skip or word.startswith("--output="):
            skip = False
        elif word == "--output":
            skip = True
        else:
            kept.append(word)
    return kept


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads is not None:  # before torch starts its thread pools
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch

    from ada3d.benchmark.sparse_encoder import DTYPES, format_table, kitti_frames, profile_inference, run_benchmark
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
    frames = kitti_frames(args.data_root, args.frames)
    config = None if args.dataflow == "default" else ConvConfig(args.dataflow)
    results = run_benchmark(
        frames, device, DTYPES[args.dtype], args.batch_size, args.warmup, args.repeats, args.compare_spconv, config
    )
    if device.type == "cuda":
        device_name = torch.cuda.get_device_name(device)
    else:
        device_name = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} thread(s)"
    title = (
        f"SECOND SparseEncoder, {args.dtype}, batch {args.batch_size}, dataflow {args.dataflow}, {device_name}, "
        f"torch {torch.__version__}, "
        f"median of {args.repeats} after {args.warmup} warm-up runs"
    )
    table = format_table(results)
    print(title)
    print(table)
    if args.profile:
        print(f"\nProfile of one inference on {frames[0].stem}:")
        print(profile_inference(frames[0], device, DTYPES[args.dtype], config))
    if args.output:
        command = "python tools/benchmark.py " + " ".join(_without_output(argv if argv is not None else sys.argv[1:]))
        with open(args.output, "a") as f:
            f.write(f"\n{title}\n\n`{command}`\n\n{table}\n")


if __name__ == "__main__":
    main()
