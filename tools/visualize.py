"""Show LiDAR frames, their boxes and what Ada3D kept: an Open3D window, or PNGs with ``--out DIR``.

Examples::

    # a raw scan (KITTI or nuScenes layout, found from the file); KITTI labels found in its tree
    python tools/visualize.py --bin demo/data/kitti/training/velodyne/000008.bin --out outputs/vis
    # frames of a KITTI tree, interactively (n / p step through them)
    python tools/visualize.py --kitti-root demo/data/kitti --index 1 8 76
    # a detector's predictions and, for an Ada3D model, what each drop stage kept (one render per stage)
    python tools/visualize.py --bin demo/data/kitti/training/velodyne/000008.bin --out outputs/vis \
        --config configs/ada3d/ada3d_second_hv_secfpn_6e_synthkitti-3d-3class_stage3.py --checkpoint CKPT
    # boxes and pruning masks a model run saved with ada3d.visualization.frame_io.save_frame_view
    python tools/visualize.py --frame-view outputs/000008.npz --out outputs/vis

Headless output per frame (``--out``): ``{frame}_{colouring}_{view}.png`` Open3D renders (one colouring
per pruning stage, or ``height`` / ``intensity``), ``{frame}[_{stage}]_bev.png`` bird's-eye panels and,
per stage, ``{frame}_{stage}_density.png`` (kept and dropped voxels by range).
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ada3d.visualization.frame_view import FrameView, GridGeometry  # noqa: E402
from ada3d.visualization.loading import (  # noqa: E402
    FrameSource,
    default_point_cloud_range,
    kitti_companion_files,
    kitti_frame_ids,
    load_frame_from_files,
    load_kitti_frame,
)
from ada3d.visualization.render_worker import DEFAULT_TIMEOUT, RenderWorker  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    inputs = parser.add_argument_group("inputs (one of --bin, --kitti-root, --frame-view)")
    source = inputs.add_mutually_exclusive_group(required=True)
    source.add_argument("--bin", nargs="+", type=Path, metavar="FILE", help="raw float32 point files (.bin, .pcd.bin)")
    source.add_argument("--kitti-root", type=Path, help="KITTI tree with <split>/velodyne, label_2, calib")
    source.add_argument("--frame-view", nargs="+", type=Path, metavar="NPZ",
                        help="frames saved by ada3d.visualization.frame_io.save_frame_view")
    inputs.add_argument("--load-dim", type=int, help="float32 values per point of --bin files "
                        "(default: 5 for *.pcd.bin, else from the file size: 4 KITTI, 5 nuScenes)")
    inputs.add_argument("--labels", type=Path, help="KITTI label file for a single --bin "
                        "(default: <split>/label_2/<id>.txt when the scan lies in a KITTI tree)")
    inputs.add_argument("--calib", type=Path, help="KITTI calib file that goes with --labels")
    inputs.add_argument("--split", default="training", help="KITTI split folder under --kitti-root")
    inputs.add_argument("--index", nargs="+", help="KITTI sample ids (8 or 000008); default: every scan")
    model = parser.add_argument_group("model (optional): run a detector on each frame and show its predictions and, "
                                      "for an Ada3D model, the pruning stages")
    model.add_argument("--config", help="model config, e.g. configs/ada3d/*_stage3.py")
    model.add_argument("--checkpoint", help="the model's weights (an mmengine checkpoint)")
    model.add_argument("--score-threshold", type=float, default=0.3, help="hide predictions scoring below this")
    model.add_argument("--device", help="where the model runs (default: cuda if available, else cpu)")
    show = parser.add_argument_group("what to show")
    show.add_argument("--color-by", choices=["stage", "height", "intensity"],
                      help="point colours (default: stage when the frame has pruning stages, else height)")
    show.add_argument("--stage", nargs="+", help="stages (names or 0-based positions) to render with --out; "
                      "default: all (the window starts at the first and steps with ] and [)")
    show.add_argument("--views", nargs="+", choices=["chase", "top"], default=["chase", "top"],
                      help="cameras of the headless renders")
    show.add_argument("--point-cloud-range", nargs=6, type=float, metavar=("X0", "Y0", "Z0", "X1", "Y1", "Z1"),
                      help="range the cameras and BEV panels frame (default: the first stage's grid, else KITTI's "
                      "for 4-column points, nuScenes' for 5)")
    show.add_argument("--bev-cell", type=float, default=0.2, help="cell size (m) of the BEV occupancy panel")
    show.add_argument("--size", nargs=2, type=int, default=[1600, 1000], metavar=("W", "H"), help="image size")
    show.add_argument("--point-size", type=float, default=2.0, help="point size in pixels")
    show.add_argument("--no-gt", action="store_true", help="hide ground-truth boxes")
    show.add_argument("--no-pred", action="store_true", help="hide predicted boxes")
    show.add_argument("--no-importance", action="store_true", help="hide the importance map")
    parser.add_argument("--out", type=Path, help="write PNGs here instead of opening a window")
    parser.add_argument("--render-timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help="seconds one headless render may take before it is retried in a fresh renderer process "
                        "(Open3D stalls now and then on software Vulkan), then fails")
    args = parser.parse_args(argv)
    if bool(args.config) != bool(args.checkpoint):
        parser.error("--config and --checkpoint go together")
    if args.config and args.frame_view:
        parser.error("--config/--checkpoint run the model on raw scans (--bin, --kitti-root); a --frame-view file "
                     "already holds a model run's boxes and masks")
    if not 0.0 <= args.score_threshold <= 1.0:
        parser.error(f"--score-threshold must lie in [0, 1], got {args.score_threshold}")
    if (args.labels or args.calib) and not (args.bin and len(args.bin) == 1):
        parser.error("--labels/--calib go with a single --bin file")
    if bool(args.labels) != bool(args.calib):
        parser.error("--labels and --calib go together (KITTI labels are camera boxes; the calib maps them to LiDAR)")
    if args.index and not args.kitti_root:
        parser.error("--index goes with --kitti-root")
    return args


def frame_sources(args: argparse.Namespace) -> list[FrameSource]:
    """One lazily loaded frame per input file / KITTI id (run through the model with ``--config``)."""
    from ada3d.visualization.frame_io import load_frame_view

    def load_bin(path: Path) -> FrameView:
        label, calib = (args.labels, args.calib) if args.labels else kitti_companion_files(path)
        if label is None:
            calib = None
        return load_frame_from_files(path, args.load_dim, label, calib)

    if args.frame_view:
        return [FrameSource(path.name, lambda path=path: load_frame_view(path)) for path in args.frame_view]
    if args.kitti_root:
        ids = args.index or kitti_frame_ids(args.kitti_root, args.split)
        sources = [FrameSource(str(i), lambda i=i: load_kitti_frame(args.kitti_root, i, args.split)) for i in ids]
    else:
        sources = [FrameSource(path.name, lambda path=path: load_bin(path)) for path in args.bin]
    return [with_model(source, args) for source in sources] if args.config else sources


@functools.cache
def _model(config: str, checkpoint: str, device: str | None):
    """The detector and its class names, loaded once (on the first frame shown)."""
    import torch

    from ada3d.visualization.from_model import load_model

    return load_model(config, checkpoint, device or ("cuda" if torch.cuda.is_available() else "cpu"))


def with_model(source: FrameSource, args: argparse.Namespace) -> FrameSource:
    """``source`` whose frame is run through the ``--config`` / ``--checkpoint`` detector when loaded."""
    from ada3d.visualization.from_model import predict_frame

    def load() -> FrameView:
        model, class_names = _model(args.config, args.checkpoint, args.device)
        return predict_frame(model, source.load(), class_names, args.score_threshold)

    return FrameSource(source.name, load)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()


def _stage_keys(view: FrameView, requested: list[str] | None) -> list[int]:
    if not requested:
        return list(range(len(view.stages)))
    return [view.stages.index(view.stage(int(key) if key.lstrip("-").isdigit() else key)) for key in requested]


def render_frame(view: FrameView, args: argparse.Namespace, worker) -> list[Path]:
    """Write the PNGs of one frame (see the module docstring) through ``worker`` (a
    :class:`~ada3d.visualization.render_worker.RenderWorker`); returns their paths."""
    from ada3d.visualization.bev_plots import bev_figure, density_vs_range_figure
    from ada3d.visualization.cameras import default_cameras
    from ada3d.visualization.scene import SceneOptions

    point_cloud_range = tuple(args.point_cloud_range or default_point_cloud_range(view))
    cameras = default_cameras(point_cloud_range)
    color_by = args.color_by or ("stage" if view.stages else "height")
    if color_by == "stage" and not view.stages:
        raise ValueError(f"frame {view.name!r} has no pruning stages to colour by (they come from an Ada3D model "
                         f"run); use --color-by height or intensity")
    stages = _stage_keys(view, args.stage)
    base = SceneOptions(color_by=color_by, point_size=args.point_size, show_gt=not args.no_gt,
                        show_pred=not args.no_pred, show_importance=not args.no_importance)
    renders = ([(f"stage{i}_{_slug(view.stages[i].name)}", i) for i in stages] if color_by == "stage"
               else [(color_by, stages[0] if stages else 0)])
    written = []
    for label, stage in renders:
        for name in args.views:
            path = args.out / f"{view.name}_{label}_{name}.png"
            written.append(worker.save_png(view, replace(base, stage=stage), cameras[name], path))
    grid = GridGeometry((args.bev_cell, args.bev_cell), point_cloud_range)
    figures = [(f"{view.name}_bev.png", bev_figure(view, grid, None, not args.no_gt, not args.no_pred))]
    for i in stages:
        stem = f"{view.name}_stage{i}_{_slug(view.stages[i].name)}"
        figures.append((f"{stem}_bev.png", bev_figure(view, grid, i, not args.no_gt, not args.no_pred)))
        figures.append((f"{stem}_density.png", density_vs_range_figure(view, i)))
    for name, figure in figures:
        figure.savefig(args.out / name, dpi=120)
        written.append(args.out / name)
    return written


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sources = frame_sources(args)
    if not sources:
        raise SystemExit("no frames to show")
    if args.out is None:
        from ada3d.visualization.scene import SceneOptions
        from ada3d.visualization.viewer import has_display, run_viewer

        if not has_display():
            raise SystemExit("no display to open a window on (DISPLAY / WAYLAND_DISPLAY unset); "
                             "write PNGs instead with --out DIR")
        options = SceneOptions(color_by=args.color_by or "stage", point_size=args.point_size,
                               show_gt=not args.no_gt, show_pred=not args.no_pred,
                               show_importance=not args.no_importance)
        run_viewer(sources, options, args.point_cloud_range, tuple(args.size))
        return

    from tqdm import tqdm

    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    with RenderWorker(*args.size, timeout=args.render_timeout) as worker:
        for source in tqdm(sources, desc="rendering", unit="frame", disable=len(sources) == 1):
            written += render_frame(source.load(), args, worker)
    print(f"wrote {len(written)} images to {args.out}:")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    main()
