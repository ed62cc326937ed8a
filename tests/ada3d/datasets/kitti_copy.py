"""Working copies of the real KITTI demo frames for data-preparation tests.

The repository ships velodyne, label_2 and calib of three frames but no images (keeping the clone lean); the
infos only need each image's size, so a copy gets valid blank PNGs of the frames' real sizes.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

from tests.conftest import KITTI_DEMO_ROOT

# (height, width) of the original KITTI image_2 PNGs of the demo frames
DEMO_IMAGE_SHAPES = {"000001": (375, 1242), "000008": (375, 1242), "000076": (374, 1238)}


def write_png(path: Path, height: int, width: int) -> None:
    """A valid 8-bit grey PNG of the given size, all black."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + bytes(width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunks)


def copy_demo_kitti(root: Path, train: list[str], val: list[str], images: bool = True) -> Path:
    """A KITTI root at ``root`` with the demo frames of ``train`` + ``val``, their ImageSets and (blank) images."""
    frames = train + val
    for folder, suffix in (("velodyne", "bin"), ("label_2", "txt"), ("calib", "txt")):
        (root / "training" / folder).mkdir(parents=True)
        for frame in frames:
            shutil.copy(KITTI_DEMO_ROOT / "training" / folder / f"{frame}.{suffix}", root / "training" / folder)
    if images:
        (root / "training" / "image_2").mkdir()
        for frame in frames:
            write_png(root / "training" / "image_2" / f"{frame}.png", *DEMO_IMAGE_SHAPES[frame])
    (root / "ImageSets").mkdir()
    (root / "ImageSets" / "train.txt").write_text("".join(f"{frame}\n" for frame in train))
    (root / "ImageSets" / "val.txt").write_text("".join(f"{frame}\n" for frame in val))
    return root
