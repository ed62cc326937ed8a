from .data_sample import Det3DDataSample

__all__ = ["Det3DDataSample"]
