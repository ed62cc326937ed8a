"""Training-loop pieces on mmengine: checkpoint loading fixes, hooks."""

from ada3d.engine.checkpoint import load_local_checkpoint, register_checkpoint_loader
from ada3d.engine.config import load_config

register_checkpoint_loader()

__all__ = ["load_config", "load_local_checkpoint", "register_checkpoint_loader"]
