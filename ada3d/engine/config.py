"""Loading a run's config the way every tool does: check the files, read the config, apply overrides."""

from __future__ import annotations

import os.path as osp

from mmengine.config import Config


def load_config(config: str, cfg_options: dict | None = None, checkpoint: str | None = None) -> Config:
    """``Config.fromfile(config)`` with ``cfg_options`` merged in.

    Raises:
        FileNotFoundError: naming the config or checkpoint (when given) that does not exist.
    """
    for path, what in ((config, "config"), (checkpoint, "checkpoint")):
        if path is not None and not osp.isfile(path):
            raise FileNotFoundError(f"{what} file not found: {path}")
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg
