"""Training-loop pieces on mmengine: checkpoint loading fixes, hooks."""

from ada3d.engine.checkpoint import load_local_checkpoint, register_checkpoint_loader

register_checkpoint_loader()

__all__ = ["load_local_checkpoint", "register_checkpoint_loader"]
