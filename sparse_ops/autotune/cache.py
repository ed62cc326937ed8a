"""The autotuner's disk cache: the configuration chosen per layer group, keyed by everything that
changes which one is fastest (device, software versions, mode, dtype, layer signature, size bucket).

One JSON file, ``$SPARSE_OPS_TUNE_CACHE`` or ``~/.cache/sparse_ops/autotune.json`` (under
``$XDG_CACHE_HOME`` where set). Writes merge with what is on disk and replace the file atomically, so
concurrent tuners lose at most each other's newest entries, never the file. A file that cannot be
read is reported with a warning and rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from sparse_ops.conv.config import ConvConfig

CACHE_ENV = "SPARSE_OPS_TUNE_CACHE"
FORMAT_VERSION = 1
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CacheEntry:
    """A tuned choice: the configuration and the times that chose it (median ms per group run)."""

    config: ConvConfig
    time_ms: float
    default_ms: float | None

    def to_json(self) -> dict:
        return {"config": asdict(self.config), "time_ms": self.time_ms, "default_ms": self.default_ms}

    @classmethod
    def from_json(cls, data: dict) -> CacheEntry:
        """Raises ``ValueError`` / ``TypeError`` / ``KeyError`` for an entry this version cannot use."""
        default_ms = None if data["default_ms"] is None else float(data["default_ms"])
        return cls(ConvConfig(**data["config"]), float(data["time_ms"]), default_ms)


def default_cache_path() -> Path:
    """``$SPARSE_OPS_TUNE_CACHE``, else ``$XDG_CACHE_HOME/sparse_ops/autotune.json`` (``~/.cache`` by default)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "sparse_ops" / "autotune.json"


def device_name(device: torch.device) -> str:
    """``NVIDIA H100 80GB HBM3`` on CUDA, ``cpu-x86_64`` elsewhere."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type}-{platform.machine()}"


def software_versions() -> str:
    """The versions whose kernels and launch code the timings depend on."""
    from sparse_ops import __version__

    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = "none"
    return f"torch {torch.__version__}, triton {triton_version}, sparse_ops {__version__}"


class TuningCache:
    """Tuned entries by key, backed by a JSON file (or in memory only when ``path`` is None).

    Args:
        path: the JSON file; it need not exist yet.
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = None if path is None else Path(path)
        self._entries: dict[str, dict] = self._read(warn=True)
        self._new: dict[str, dict] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CacheEntry | None:
        data = self._entries.get(key)
        if data is None:
            return None
        try:
            return CacheEntry.from_json(data)
        except (KeyError, TypeError, ValueError) as error:
            warnings.warn(f"autotune cache {self.path}: ignoring unusable entry {key!r} ({error!r})", stacklevel=2)
            return None

    def put(self, key: str, entry: CacheEntry) -> None:
        self._entries[key] = self._new[key] = entry.to_json()

    def save(self) -> None:
        """Merge the entries put since loading into the file on disk and replace it atomically.

        A file that cannot be written (read-only location, full disk) is reported with a warning.
        """
        if self.path is None or not self._new:
            return
        merged = self._read(warn=False)
        merged.update(self._new)
        payload = {"version": FORMAT_VERSION, "entries": merged}
        temporary = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".autotune-", suffix=".json")
            with os.fdopen(handle, "w") as file:
                json.dump(payload, file, indent=1, sort_keys=True)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            warnings.warn(f"could not write the autotune cache {self.path}: {error}", stacklevel=2)
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
            return
        self._entries = merged
        self._new.clear()

    def _read(self, warn: bool) -> dict[str, dict]:
        """The entries on disk; an unreadable file gives a warning (if ``warn``) and no entries."""
        if self.path is None or not self.path.exists():
            return {}
        try:
            payload = json.loads(self.path.read_text())
            if not isinstance(payload, dict) or not isinstance(payload.get("entries"), dict):
                raise ValueError("expected an object with an 'entries' object")
        except (OSError, UnicodeDecodeError, ValueError) as error:
            if warn:
                warnings.warn(
                    f"autotune cache {self.path} is unreadable ({error}); starting from an empty cache, "
                    "the file is rewritten after tuning",
                    stacklevel=3,
                )
            return {}
        if payload.get("version") != FORMAT_VERSION:
            found = payload.get("version")
            logger.info("autotune cache %s has format %r, not %r: ignored", self.path, found, FORMAT_VERSION)
            return {}
        return payload["entries"]
