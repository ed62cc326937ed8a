"""Detector components, registered in :data:`ada3d.registry.MODELS`."""

from ada3d.models import data_preprocessors, layers, middle_encoders, voxel_encoders  # noqa: F401  (registers the modules)
