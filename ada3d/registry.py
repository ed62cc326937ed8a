"""ada3d's registries, children of mmengine's so configs can mix components of both."""

from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

MODELS = Registry("model", parent=MMENGINE_MODELS, locations=["ada3d.models"])
