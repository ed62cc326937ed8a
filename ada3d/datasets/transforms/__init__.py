"""Data pipeline steps, registered in :data:`ada3d.registry.TRANSFORMS` under mmdet3d's names."""

from ada3d.datasets.transforms.dbsampler import DataBaseSampler, ObjectSample
from ada3d.datasets.transforms.formatting import Pack3DDetInputs
from ada3d.datasets.transforms.loading import LoadAnnotations3D, LoadPointsFromFile
from ada3d.datasets.transforms.transforms_3d import (
    GlobalRotScaleTrans,
    ObjectNameFilter,
    ObjectNoise,
    ObjectRangeFilter,
    PointShuffle,
    PointsRangeFilter,
    RandomFlip3D,
)

__all__ = [
    "DataBaseSampler",
    "GlobalRotScaleTrans",
    "LoadAnnotations3D",
    "LoadPointsFromFile",
    "ObjectNameFilter",
    "ObjectNoise",
    "ObjectRangeFilter",
    "ObjectSample",
    "Pack3DDetInputs",
    "PointShuffle",
    "PointsRangeFilter",
    "RandomFlip3D",
]
