"""Detector components, registered in :data:`ada3d.registry.MODELS` (task utilities in ``TASK_UTILS``)."""

from ada3d.models import (  # noqa: F401  (registers the modules)
    backbones,
    data_preprocessors,
    detectors,
    heads,
    layers,
    losses,
    middle_encoders,
    necks,
    task_modules,
    voxel_encoders,
)
