"""Prepare datasets for training and evaluation.

    python tools/create_data.py kitti --root data/kitti [--workers 4] [--image-shape 375 1242]
    python tools/create_data.py synthkitti --out data/synthkitti --frames 200 --seed 0 [--workers 4]

Both write, under the dataset root: kitti_infos_{train,val,trainval,test}.pkl (mmdet3d v2 layout),
training/velodyne_reduced/ (scans cropped to the camera field of view), kitti_gt_database/ and
kitti_dbinfos_train.pkl (objects for GT sampling). ``synthkitti`` first simulates a KITTI-format dataset.
See data/README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="dataset", required=True)
    kitti = commands.add_parser("kitti", help="real KITTI: infos, velodyne_reduced and GT database")
    kitti.add_argument("--root", "--root-path", dest="root", default="data/kitti",
                       help="KITTI root with ImageSets/ and training/ (testing/ optional)")
    kitti.add_argument(
        "--image-shape", nargs=2, type=int, metavar=("HEIGHT", "WIDTH"),
        help="image size to record for every frame of a copy without image_2 (KITTI's images are 370-376 x "
        "1224-1242 px, so the FOV crop and the metric's image clipping become approximate); default: read each PNG",
    )
    synth = commands.add_parser("synthkitti", help="simulate a KITTI-format dataset, then prepare it like kitti")
    synth.add_argument("--out", default="data/synthkitti", help="dataset root to write")
    synth.add_argument("--frames", type=int, default=200, help="frames to simulate (train + val)")
    synth.add_argument("--seed", type=int, default=0)
    for command in (kitti, synth):
        command.add_argument("--extra-tag", default="kitti", help="prefix of the written files (kitti_infos_*.pkl)")
        command.add_argument("--workers", type=int, default=1, help="processes for reading / simulating frames")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Path]:
    args = parse_args(argv)
    from ada3d.datasets.kitti_converter import prepare_kitti

    if args.dataset == "synthkitti":
        from ada3d.datasets.synthetic import generate_kitti_dataset

        generate_kitti_dataset(args.out, args.frames, args.seed, val_fraction=0.25, workers=args.workers)
        written = prepare_kitti(args.out, args.extra_tag, "synthkitti", args.workers)
    else:
        image_shape = tuple(args.image_shape) if args.image_shape else None
        written = prepare_kitti(args.root, args.extra_tag, "kitti", args.workers, image_shape)
    for name, path in written.items():
        print(f"{name}: {path}")
    return written


if __name__ == "__main__":
    main()
