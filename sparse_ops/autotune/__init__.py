"""The autotuner: per group of layers sharing a kernel map, the fastest dataflow and tile configuration.

TorchSparse++'s idea: layers on one kernel map share its derived layouts, so they are tuned together;
candidates are timed on the model's real inputs and the choice is cached on disk per device, layer
signature and size bucket. ``sparse_ops.tune(model, inputs)`` runs it; untuned layers keep
``sparse_ops.conv.default_config``.
"""

from sparse_ops.autotune.cache import CACHE_ENV, CacheEntry, TuningCache, default_cache_path
from sparse_ops.autotune.candidates import candidate_configs, search
from sparse_ops.autotune.record import LayerCall, LayerGroup, group_by_kernel_map, record_layer_calls
from sparse_ops.autotune.report import GroupResult, TuningReport
from sparse_ops.autotune.timing import MedianTimer, Timer, Trial, make_trial
from sparse_ops.autotune.tuner import tune

__all__ = [
    "CACHE_ENV",
    "CacheEntry",
    "GroupResult",
    "LayerCall",
    "LayerGroup",
    "MedianTimer",
    "Timer",
    "Trial",
    "TuningCache",
    "TuningReport",
    "candidate_configs",
    "default_cache_path",
    "group_by_kernel_map",
    "make_trial",
    "record_layer_calls",
    "search",
    "tune",
]
