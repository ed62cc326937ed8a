"""Batching and voxelisation on the model's device."""

from ada3d.models.data_preprocessors.data_preprocessor import Det3DDataPreprocessor, VoxelLayer

__all__ = ["Det3DDataPreprocessor", "VoxelLayer"]
