"""ada3d: voxel 3D object detectors and Ada3D adaptive inference on the sparse_ops engine."""

__version__ = "0.1.0"
