"""Train a detector from an mmengine python config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]

Single process on CPU or one GPU; several GPUs through ``tools/dist_train.sh CONFIG NGPUS``.
"""

from __future__ import annotations

import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a clone without installing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description="Train a 3D detector")
    parser.add_argument("config", help="config file path")
    parser.add_argument("--work-dir", help="where logs and checkpoints go (default: work_dirs/<config name>)")
    parser.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        help="resume from CKPT, or without a value from the latest checkpoint in the work dir",
    )
    parser.add_argument("--amp", action="store_true", help="mixed-precision training (CUDA only)")
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction, help="override config keys, e.g. train_dataloader.batch_size=4"
    )
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none")
    parser.add_argument("--local-rank", "--local_rank", type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault("LOCAL_RANK", str(args.local_rank))
    return args


def build_config(args: argparse.Namespace):
    """The config with the command line applied (work dir, resume, AMP, launcher, overrides)."""
    import torch

    from ada3d.engine import load_config

    cfg = load_config(args.config, args.cfg_options)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        if not torch.cuda.is_available():
            raise ValueError("--amp needs a CUDA device: mixed precision is not supported on CPU here")
        cfg.optim_wrapper.type = "AmpOptimWrapper"
        cfg.optim_wrapper.setdefault("loss_scale", "dynamic")
    if args.resume == "auto":
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    return cfg


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from mmengine.runner import Runner

    import ada3d.engine  # noqa: F401  (checkpoint loading under torch >= 2.6)

    runner = Runner.from_cfg(build_config(args))
    runner.train()


if __name__ == "__main__":
    main()
