"""ada3d's registries, children of mmengine's so configs can mix components of both."""

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

MODELS = Registry("model", parent=MMENGINE_MODELS, locations=["ada3d.models"])
DATASETS = Registry("dataset", parent=MMENGINE_DATASETS, locations=["ada3d.datasets"])
TRANSFORMS = Registry("transform", parent=MMENGINE_TRANSFORMS, locations=["ada3d.datasets.transforms"])
DATA_SAMPLERS = Registry("data sampler", parent=MMENGINE_DATA_SAMPLERS, locations=["ada3d.datasets"])
METRICS = Registry("metric", parent=MMENGINE_METRICS, locations=["ada3d.evaluation"])
HOOKS = Registry("hook", parent=MMENGINE_HOOKS, locations=["ada3d.engine"])
TASK_UTILS = Registry("task util", parent=MMENGINE_TASK_UTILS, locations=["ada3d.models"])
VISUALIZERS = Registry("visualizer", parent=MMENGINE_VISUALIZERS, locations=["ada3d.visualization"])
