"""Statistics that say whether LiDAR scans look like KITTI's: per frame, from points + labels + calib.

Used by ``tools/lidar_stats.py`` to compare synthetic frames with real KITTI frames. Everything is
computed the same way for both sources, from what a KITTI tree holds.

Rings of a real scan are recovered from the scan order, not from elevation: KITTI's ``.bin`` files
(and ours) list the points laser after laser, each laser sweeping its azimuth once from 0 to 360 deg,
so a new ring starts where the azimuth steps back (within a ring of the real scans it never steps back
by more than 0.5 deg). Elevation alone cannot separate the rings of a real scan: the HDL-64E's lasers
sit at different heights in the head, so near points of neighbouring lasers overlap in elevation. A
scan where a ring is empty or too sparse to show its start gets no per-ring statistics (nan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ada3d.datasets.kitti_files import KittiCalib, KittiObject
from ada3d.structures import camera_to_lidar_boxes, points_in_boxes

SECOND_VOXEL_SIZE = (0.05, 0.05, 0.1)
SECOND_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 1.0)
RANGE_BINS = np.arange(0.0, 122.5, 2.5)
HEIGHT_BINS = np.arange(-3.0, 6.01, 0.1)
INTENSITY_BINS = np.linspace(0.0, 1.0, 51)
GROUND_BELOW_Z = -1.4  # points lower than this count as ground (the sensor is 1.73 m above the road)


@dataclass
class FrameStatistics:
    """Statistics of one frame (counts, not fractions, so frames can be pooled).

    Attributes:
        num_points: points in the scan.
        points_per_ring: ``[R]`` points of each ring (nan when the rings could not be recovered).
        ring_elevation_deg: ``[R]`` median elevation of each ring's points beyond 6 m (nan if none).
        range_histogram / height_histogram / intensity_histogram: counts over :data:`RANGE_BINS`,
            :data:`HEIGHT_BINS` (z) and :data:`INTENSITY_BINS`.
        ground_points: points below :data:`GROUND_BELOW_Z`.
        second_voxels: non-empty voxels of the SECOND grid (0.05 x 0.05 x 0.1 m in
            ``[0, 70.4] x [-40, 40] x [-3, 1]`` m).
        object_names / object_distances / object_points: labelled objects (``DontCare`` excluded): class,
            horizontal distance of the box centre from the sensor (m), LiDAR points inside the box.
    """

    num_points: int
    points_per_ring: np.ndarray
    ring_elevation_deg: np.ndarray
    range_histogram: np.ndarray
    height_histogram: np.ndarray
    intensity_histogram: np.ndarray
    ground_points: int
    second_voxels: int
    object_names: list[str]
    object_distances: np.ndarray
    object_points: np.ndarray


def rings_from_scan_order(points: np.ndarray) -> np.ndarray:
    """``[N]`` ring index of each point of a scan stored laser by laser: a new ring starts where the
    azimuth, taken in ``[0, 360)`` deg, steps back by more than 0.5 deg."""
    azimuth = np.degrees(np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * np.pi))
    starts = np.zeros(len(points), dtype=np.int64)
    starts[1:] = np.diff(azimuth) < -0.5
    return np.cumsum(starts)


def second_voxel_count(points: np.ndarray) -> int:
    """Non-empty voxels of the SECOND grid (the input of the sparse encoder Ada3D prunes); float32
    arithmetic, as the voxeliser's, so border points fall into the same cells."""
    lower, upper = np.array(SECOND_RANGE[:3], np.float32), np.array(SECOND_RANGE[3:], np.float32)
    size = np.array(SECOND_VOXEL_SIZE, np.float32)
    shape = np.round((upper - lower) / size).astype(np.int64)
    cells = np.floor((np.asarray(points[:, :3], np.float32) - lower) / size).astype(np.int64)
    inside = np.all((cells >= 0) & (cells < shape), axis=1)
    cells = cells[inside]
    return int(len(np.unique((cells[:, 2] * shape[1] + cells[:, 1]) * shape[0] + cells[:, 0])))


def frame_statistics(points: np.ndarray, labels: list[KittiObject], calib: KittiCalib, rings: np.ndarray | None = None,
                     num_rings: int = 64) -> FrameStatistics:
    """Statistics of one frame: ``points`` ``[N, 4]`` in scan order, its KITTI labels and calibration.

    ``rings`` ``[N]`` gives each point's laser when known (simulated scans); otherwise the rings are
    recovered from the scan order.
    """
    points = np.asarray(points, dtype=np.float64)
    ring = rings_from_scan_order(points) if rings is None else np.asarray(rings, dtype=np.int64)
    rings_known = len(ring) > 0 and ring.max() + 1 == num_rings
    horizontal = np.hypot(points[:, 0], points[:, 1])
    distance = np.linalg.norm(points[:, :3], axis=1)
    elevation = np.degrees(np.arctan2(points[:, 2], horizontal))
    far = horizontal > 6.0
    ring_elevation = np.full(num_rings, np.nan)
    points_per_ring = np.full(num_rings, np.nan)
    if rings_known:
        points_per_ring = np.bincount(ring, minlength=num_rings).astype(np.float64)
        for r in np.unique(ring[far]):
            ring_elevation[r] = np.median(elevation[far & (ring == r)])

    objects = [obj for obj in labels if obj.name != "DontCare"]
    if objects:
        boxes = camera_to_lidar_boxes(np.stack([obj.camera_box for obj in objects]), calib.lidar2cam)
        inside = points_in_boxes(points, boxes).sum(0)
        distances = np.hypot(boxes[:, 0], boxes[:, 1])
    else:
        inside, distances = np.zeros(0, dtype=np.int64), np.zeros(0)
    return FrameStatistics(
        num_points=len(points),
        points_per_ring=points_per_ring,
        ring_elevation_deg=ring_elevation,
        range_histogram=np.histogram(distance, RANGE_BINS)[0],
        height_histogram=np.histogram(points[:, 2], HEIGHT_BINS)[0],
        intensity_histogram=np.histogram(points[:, 3], INTENSITY_BINS)[0],
        ground_points=int((points[:, 2] < GROUND_BELOW_Z).sum()),
        second_voxels=second_voxel_count(points),
        object_names=[obj.name for obj in objects],
        object_distances=distances,
        object_points=np.asarray(inside, dtype=np.int64),
    )


@dataclass
class DatasetStatistics:
    """Per-frame statistics of a set of frames, with the summaries the comparison reports."""

    frames: list[FrameStatistics]

    def per_frame(self, name: str) -> np.ndarray:
        return np.array([getattr(frame, name) for frame in self.frames], dtype=np.float64)

    def ground_fraction(self) -> np.ndarray:
        return self.per_frame("ground_points") / self.per_frame("num_points")

    def range_quantiles(self, quantiles=(0.5, 0.9)) -> np.ndarray:
        """Range quantiles (metres) of the pooled points, read from the range histogram."""
        counts = np.sum([frame.range_histogram for frame in self.frames], axis=0)
        cumulative = np.cumsum(counts) / counts.sum()
        return np.interp(quantiles, np.concatenate([[0.0], cumulative]), RANGE_BINS)

    def labelled_objects(self, classes=None) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, points)`` of the labelled objects of ``classes`` (all when None), pooled."""
        keep = [(d, p) for frame in self.frames
                for name, d, p in zip(frame.object_names, frame.object_distances, frame.object_points)
                if classes is None or name in classes]
        return (np.array([d for d, _ in keep]), np.array([p for _, p in keep])) if keep else (np.zeros(0), np.zeros(0))

    def labels_per_frame(self) -> np.ndarray:
        return np.array([len(frame.object_names) for frame in self.frames], dtype=np.float64)


def median_by_distance(distances: np.ndarray, values: np.ndarray, bins) -> np.ndarray:
    """Median of ``values`` in each distance bin (nan where a bin is empty)."""
    medians = np.full(len(bins) - 1, np.nan)
    which = np.digitize(distances, bins) - 1
    for b in range(len(bins) - 1):
        if np.any(which == b):
            medians[b] = np.median(values[which == b])
    return medians
