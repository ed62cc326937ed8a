"""Compare synthetic LiDAR frames with real KITTI scans: a multi-panel plot and a markdown table.

Examples::

    # 60 synthetic frames simulated in memory (seed 0) against the real scans of a KITTI tree
    python tools/lidar_stats.py --real data/kitti --num-frames 60 --seed 0 \
        --plot docs/images/synthetic_vs_real.png --table docs/images/synthetic_vs_real.md

    # frames already written by tools/create_data.py
    python tools/lidar_stats.py --real data/kitti --synthetic data/synthkitti

Real frames are those of ``<real>/training/velodyne/*.bin`` that have a label and a calib file. See
``ada3d/datasets/synthetic/scan_statistics.py`` for what each statistic measures.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ada3d.datasets.io import load_points  # noqa: E402
from ada3d.datasets.kitti_files import read_calib_file, read_label_file  # noqa: E402
from ada3d.datasets.synthetic import hdl64e_elevations_deg, simulate_frame  # noqa: E402
from ada3d.datasets.synthetic.scan_statistics import (  # noqa: E402
    HEIGHT_BINS,
    INTENSITY_BINS,
    RANGE_BINS,
    DatasetStatistics,
    frame_statistics,
    median_by_distance,
)

OBJECT_DISTANCE_BINS = (0.0, 10.0, 20.0, 30.0, 45.0, 70.0)
VEHICLES = ("Car", "Van")


def kitti_tree_statistics(root: Path, limit: int | None = None) -> DatasetStatistics:
    """Statistics of the labelled full scans of a KITTI tree (``training/{velodyne,label_2,calib}``)."""
    training = root / "training"
    scans = sorted((training / "velodyne").glob("*.bin"))
    scans = [scan for scan in scans if (training / "label_2" / f"{scan.stem}.txt").is_file()][:limit]
    if not scans:
        raise FileNotFoundError(f"no labelled scans under {training}/velodyne (with label_2/ and calib/ files)")
    frames = []
    for scan in tqdm(scans, desc=f"statistics of {root}", unit="frame"):
        labels = read_label_file(training / "label_2" / f"{scan.stem}.txt")
        calib = read_calib_file(training / "calib" / f"{scan.stem}.txt")
        frames.append(frame_statistics(load_points(scan), labels, calib))
    return DatasetStatistics(frames)


def simulated_statistics(num_frames: int, seed: int) -> DatasetStatistics:
    """Statistics of ``num_frames`` synthetic frames simulated in memory (the frames a dataset with
    ``seed`` would hold)."""
    frames = []
    for index in tqdm(range(num_frames), desc="simulating", unit="frame"):
        frame = simulate_frame(seed, index, render=False)
        frames.append(frame_statistics(frame.points, frame.labels, frame.calib, rings=frame.scan.ring))
    return DatasetStatistics(frames)


def _mean_std(values: np.ndarray, scale: float = 1.0, digits: int = 0) -> str:
    return f"{np.mean(values) * scale:,.{digits}f} ± {np.std(values) * scale:,.{digits}f}"


def _range_shares_and_intensity(stats: DatasetStatistics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: share of points beyond 20 m, beyond 40 m, and the mean intensity."""
    ranges = np.stack([frame.range_histogram for frame in stats.frames]).astype(np.float64)
    intensity = np.stack([frame.intensity_histogram for frame in stats.frames]).astype(np.float64)
    centres = (INTENSITY_BINS[:-1] + INTENSITY_BINS[1:]) / 2
    return (ranges[:, RANGE_BINS[:-1] >= 20].sum(1) / ranges.sum(1), ranges[:, RANGE_BINS[:-1] >= 40].sum(1) /
            ranges.sum(1), (intensity * centres).sum(1) / intensity.sum(1))


def comparison_rows(real: DatasetStatistics, synthetic: DatasetStatistics) -> list[tuple[str, str, str, str]]:
    """``(statistic, real, synthetic, synthetic / real)`` rows of the markdown table."""
    rows = []

    def add(name, real_values, synthetic_values, scale=1.0, digits=0):
        ratio = np.mean(synthetic_values) / np.mean(real_values) if np.mean(real_values) else np.nan
        rows.append((name, _mean_std(real_values, scale, digits), _mean_std(synthetic_values, scale, digits),
                     f"{ratio:.2f}"))

    add("points per frame", real.per_frame("num_points"), synthetic.per_frame("num_points"))
    add("non-empty SECOND voxels", real.per_frame("second_voxels"), synthetic.per_frame("second_voxels"))
    add("ground points (z < -1.4 m), %", real.ground_fraction(), synthetic.ground_fraction(), 100, 1)
    real_extra, synthetic_extra = _range_shares_and_intensity(real), _range_shares_and_intensity(synthetic)
    add("points beyond 20 m, %", real_extra[0], synthetic_extra[0], 100, 1)
    add("points beyond 40 m, %", real_extra[1], synthetic_extra[1], 100, 2)
    real_q, synthetic_q = real.range_quantiles(), synthetic.range_quantiles()
    rows.append(("median / 90th-percentile range, m", f"{real_q[0]:.1f} / {real_q[1]:.1f}",
                 f"{synthetic_q[0]:.1f} / {synthetic_q[1]:.1f}",
                 f"{synthetic_q[0] / real_q[0]:.2f} / {synthetic_q[1] / real_q[1]:.2f}"))
    add("mean intensity", real_extra[2], synthetic_extra[2], 1, 3)
    add("labelled objects per frame (camera FOV)", real.labels_per_frame(), synthetic.labels_per_frame(), 1, 1)
    real_d, real_p = real.labelled_objects(VEHICLES)
    synthetic_d, synthetic_p = synthetic.labelled_objects(VEHICLES)
    # points scaled to 10 m by the 1/r^2 law: a median that does not depend on where in the bin cars happen to be
    real_median = median_by_distance(real_d, real_p * (real_d / 10) ** 2, OBJECT_DISTANCE_BINS)
    synthetic_median = median_by_distance(synthetic_d, synthetic_p * (synthetic_d / 10) ** 2, OBJECT_DISTANCE_BINS)
    for b in range(len(OBJECT_DISTANCE_BINS) - 1):
        lo, hi = OBJECT_DISTANCE_BINS[b], OBJECT_DISTANCE_BINS[b + 1]
        real_n = int(np.sum((real_d >= lo) & (real_d < hi)))
        synthetic_n = int(np.sum((synthetic_d >= lo) & (synthetic_d < hi)))
        ratio = synthetic_median[b] / real_median[b] if real_n and synthetic_n else np.nan
        rows.append((f"car/van points x (d / 10 m)², {lo:.0f}-{hi:.0f} m (median; cars)",
                     f"{real_median[b]:,.0f} ({real_n})" if real_n else "-",
                     f"{synthetic_median[b]:,.0f} ({synthetic_n})" if synthetic_n else "-",
                     f"{ratio:.2f}" if np.isfinite(ratio) else "-"))
    return rows


def markdown_table(rows, real_count: int, synthetic_count: int) -> str:
    header = f"| statistic | real KITTI ({real_count} frames) | synthetic ({synthetic_count} frames) | synth. / real |"
    lines = [header, "|---|---:|---:|---:|"]
    lines += [f"| {name} | {real} | {synthetic} | {ratio} |" for name, real, synthetic, ratio in rows]
    return "\n".join(lines) + "\n"


def _histogram_density(stats: DatasetStatistics, field: str) -> np.ndarray:
    counts = np.sum([getattr(frame, field) for frame in stats.frames], axis=0).astype(np.float64)
    return counts / counts.sum()


def plot_comparison(real: DatasetStatistics, synthetic: DatasetStatistics, real_scan: np.ndarray,
                    synthetic_scan: np.ndarray, path: Path) -> None:
    """Write the 3 x 3 comparison figure to ``path``."""
    colours = {"real": "tab:blue", "synthetic": "tab:orange"}
    fig, axes = plt.subplots(3, 3, figsize=(16, 14))
    sets = (("real", real), ("synthetic", synthetic))

    ax = axes[0, 0]
    for name, stats in sets:
        rings = np.stack([frame.points_per_ring for frame in stats.frames])
        ax.plot(np.nanmean(rings, 0), color=colours[name], label=name)
        ax.fill_between(np.arange(rings.shape[1]), np.nanmin(rings, 0), np.nanmax(rings, 0), color=colours[name],
                        alpha=0.2)
    ax.set(title="points per ring (mean, min-max)", xlabel="ring (0 = highest laser)", ylabel="points")
    ax.legend()

    ax = axes[0, 1]
    for name, stats in sets:
        elevations = np.nanmedian(np.stack([frame.ring_elevation_deg for frame in stats.frames]), 0)
        ax.plot(elevations, "o", ms=3, color=colours[name], label=f"{name} (median of points beyond 6 m)")
    ax.plot(hdl64e_elevations_deg(), "k-", lw=0.8, label="HDL-64E nominal table")
    ax.set(title="elevation per ring", xlabel="ring", ylabel="degrees")
    ax.legend(fontsize=8)

    ax = axes[0, 2]
    centres = (RANGE_BINS[:-1] + RANGE_BINS[1:]) / 2
    for name, stats in sets:
        ax.semilogy(centres, _histogram_density(stats, "range_histogram"), color=colours[name], label=name)
    ax.set(title="range histogram (share of points per 2.5 m)", xlabel="range (m)", xlim=(0, 90))
    ax.legend()

    ax = axes[1, 0]
    centres = (HEIGHT_BINS[:-1] + HEIGHT_BINS[1:]) / 2
    for name, stats in sets:
        ax.semilogy(centres, _histogram_density(stats, "height_histogram"), color=colours[name], label=name)
    ax.axvline(-1.73, color="k", lw=0.6, ls="--")
    ax.set(title="height histogram (share of points per 0.1 m)", xlabel="z (m); dashed: -1.73 m")
    ax.legend()

    ax = axes[1, 1]
    centres = (INTENSITY_BINS[:-1] + INTENSITY_BINS[1:]) / 2
    for name, stats in sets:
        ax.plot(centres, _histogram_density(stats, "intensity_histogram"), color=colours[name], label=name)
    ax.set(title="intensity histogram", xlabel="intensity")
    ax.legend()

    ax = axes[1, 2]
    for name, stats in sets:
        distances, counts = stats.labelled_objects(VEHICLES)
        ax.scatter(distances, np.maximum(counts, 0.8), s=8 if name == "real" else 3, color=colours[name],
                   alpha=0.9 if name == "real" else 0.35, label=f"{name} ({len(distances)} cars/vans)")
        medians = median_by_distance(distances, counts, OBJECT_DISTANCE_BINS)
        middle = (np.array(OBJECT_DISTANCE_BINS[:-1]) + np.array(OBJECT_DISTANCE_BINS[1:])) / 2
        ax.plot(middle, medians, "-", color=colours[name], lw=2)
    grid = np.linspace(3, 70, 100)
    ax.plot(grid, 6237 * (7.9 / grid) ** 2, "k:", lw=0.8, label="1/r² through a real car")
    ax.set_yscale("log")
    ax.set(title="points in labelled car / van boxes (line: median per bin)", xlabel="distance (m)",
           ylabel="points", ylim=(0.8, 3e4))
    ax.legend(fontsize=8)

    for ax, scan, title in ((axes[2, 0], real_scan, "real KITTI scan (BEV, colour = z)"),
                            (axes[2, 1], synthetic_scan, "synthetic scan (BEV, colour = z)")):
        ax.scatter(scan[:, 0], scan[:, 1], s=0.02, c=scan[:, 2], cmap="viridis", vmin=-2.0, vmax=1.0)
        ax.set(title=title, xlim=(-40, 40), ylim=(-40, 40), aspect="equal")

    ax = axes[2, 2]
    names = ("points", "SECOND voxels", "ground share", "labels")
    ratios = [synthetic.per_frame("num_points").mean() / real.per_frame("num_points").mean(),
              synthetic.per_frame("second_voxels").mean() / real.per_frame("second_voxels").mean(),
              synthetic.ground_fraction().mean() / real.ground_fraction().mean(),
              synthetic.labels_per_frame().mean() / real.labels_per_frame().mean()]
    ax.bar(names, ratios, color="tab:orange")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhspan(0.85, 1.15, color="tab:green", alpha=0.15)
    ax.set(title="synthetic / real (means per frame; band: +-15 %)", ylim=(0, 2))

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, required=True, help="KITTI tree with real labelled full scans")
    parser.add_argument("--synthetic", type=Path, help="synthetic KITTI tree (default: simulate in memory)")
    parser.add_argument("--num-frames", type=int, default=60, help="synthetic frames to simulate or read")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated frames")
    parser.add_argument("--plot", type=Path, default=Path("synthetic_vs_real.png"))
    parser.add_argument("--table", type=Path, default=Path("synthetic_vs_real.md"))
    args = parser.parse_args(argv)

    real = kitti_tree_statistics(args.real)
    if args.synthetic is not None:
        synthetic = kitti_tree_statistics(args.synthetic, limit=args.num_frames)
        synthetic_scan = load_points(sorted((args.synthetic / "training" / "velodyne").glob("*.bin"))[0])
    else:
        synthetic = simulated_statistics(args.num_frames, args.seed)
        synthetic_scan = simulate_frame(args.seed, 0, render=False).points
    real_scan = load_points(sorted((args.real / "training" / "velodyne").glob("*.bin"))[0])

    table = markdown_table(comparison_rows(real, synthetic), len(real.frames), len(synthetic.frames))
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(table)
    plot_comparison(real, synthetic, real_scan, synthetic_scan, args.plot)
    print(table)
    print(f"wrote {args.plot} and {args.table}")


if __name__ == "__main__":
    main()
