"""A voxel detector's 3D and 2D parts replayed as CUDA graphs (inference), dense SECOND and Ada3D alike.

Eager inference of these detectors is host-bound on a fast GPU: hundreds of kernel launches with Python between
them, and for Ada3D one host sync per drop. :class:`GraphedDetector` runs each part through
:class:`sparse_ops.graphs.CudaGraphRunner`: the part runs in padded execution (padding rows of batch -1, every
data-dependent row count - strided kernel maps, Ada3D's column and pixel drops, the BEV columns - sized by a
learned capacity), captured once per input size bucket and replayed; an overflowing capacity is recaptured and
the frame rerun, so outputs are always exactly the eager ones.
"""

from __future__ import annotations

import torch

from ada3d.models.adaptive.pruning_record import PruningRecord
from ada3d.models.detectors.ada3d_voxelnet import Ada3DVoxelNet
from ada3d.models.detectors.voxelnet import VoxelNet
from ada3d.structures.sparse_bev_map import SparseBevMap
from sparse_ops import SparseTensor
from sparse_ops.graphs import CudaGraphRunner

HARD_VOXEL_KEYS = ("voxels", "num_points", "coors", "batch_size")


class GraphedDetector:
    """``encode_3d`` / ``encode_2d`` / ``extract_feat`` of a :class:`VoxelNet` or :class:`Ada3DVoxelNet` through
    CUDA graphs.

    Parts:

    * 3D: hard voxels ``dict(voxels [V, P, C], num_points [V], coors [V, 4], batch_size)`` -> VFE, sparse encoder
      and, for Ada3D, the importance predictor and the voxel-column drops -> the dense BEV map ``[B, C, H, W]``
      (VoxelNet) or the occupied BEV pixels (Ada3D: a 2D :class:`SparseTensor` without padding rows;
      ``model.last_pruning`` is set as after an eager ``encode_3d``).
    * 2D: BEV -> for Ada3D the pixel drop (its record joins ``model.last_pruning``), backbone (SECOND on the dense
      map, SparseSECOND on the kept pixels) and neck -> the head's maps (Ada3D with a SparseSECONDFPN neck:
      :class:`SparseBevMap` s, padding rows included).

    Args:
        model: the detector, in eval mode (padded execution is inference only). Its weights are read in place, so
            loading new weights into it needs no recapture; Ada3D's keep ratios and strategy are baked into the
            graphs, so each setting gets its own runners. Other structural changes (e.g. ``SparseSECOND.execution``)
            need a new GraphedDetector.
        capture: False runs the same padded execution eagerly (any device; see :class:`CudaGraphRunner`).
        margin, bucket_bits, max_graphs: :class:`CudaGraphRunner`'s, for every part.
        copy_outputs: :class:`CudaGraphRunner`'s, for the 2D part (the head's maps): False hands out the graph's
            own buffers, overwritten by the next frame. The 3D part's output never copies: it goes straight into
            the 2D part. Ada3D's kept pixels and pruning records (``model.last_pruning``) are copies with True,
            views of the graph's buffers with False.
    """

    def __init__(
        self,
        model: VoxelNet,
        capture: bool = True,
        margin: float = 1.1,
        bucket_bits: int = 3,
        max_graphs: int = 8,
        copy_outputs: bool = True,
    ) -> None:
        if not isinstance(model, VoxelNet):
            raise TypeError(f"GraphedDetector runs a VoxelNet or Ada3DVoxelNet, got {type(model).__name__}")
        if model.training:
            raise ValueError("GraphedDetector is for inference: put the model in eval mode first (model.eval())")
        self.model = model
        self.adaptive = isinstance(model, Ada3DVoxelNet)
        self.copy_outputs = copy_outputs
        self._runner_args = dict(margin=margin, bucket_bits=bucket_bits, max_graphs=max_graphs, capture=capture)
        self._runners: dict[tuple, CudaGraphRunner] = {}  # by part and Ada3D setting
        self._sparse_grids: list[tuple[int, ...]] = []  # (H, W) of Ada3D's SparseBevMap levels, set by _sparse_2d

    @property
    def capture(self) -> bool:
        return self._runner_args["capture"]

    def runner_3d(self) -> CudaGraphRunner:
        """The runner of the 3D part for the model's current setting (Ada3D: 3D keep ratios and strategy)."""
        setting = (self.model.keep_ratios_3d, self._strategy()) if self.adaptive else ()
        return self._runner(("3d", *setting), self._encode_3d_rows, self.model.middle_encoder.sparse_shape, False)

    def runner_2d(self) -> CudaGraphRunner:
        """The runner of the 2D part for the model's current setting (Ada3D: BEV keep ratio and strategy)."""
        if not self.adaptive:
            return self._runner(("2d",), self.model.encode_2d, None, self.copy_outputs)
        setting = (self.model.keep_ratio_bev, self._strategy())
        return self._runner(("2d", *setting), self._sparse_2d, self.model.grid.shape, self.copy_outputs)

    def _runner(self, key: tuple, fn, spatial_shape, copy_outputs: bool) -> CudaGraphRunner:
        if key not in self._runners:
            shape = () if spatial_shape is None else (spatial_shape,)
            self._runners[key] = CudaGraphRunner(fn, *shape, copy_outputs=copy_outputs, **self._runner_args)
        return self._runners[key]

    def _strategy(self) -> str:
        """The Ada3D model's ranking strategy, refused for capture where a graph cannot replay it."""
        if self.capture and self.model.strategy == "random":
            raise ValueError(
                "strategy 'random' draws from the spatial filter's own generator, which a CUDA graph would "
                "replay unchanged; use capture=False or the 'predictor' / 'distance' strategies"
            )
        return self.model.strategy

    def encode_3d(self, voxels: dict) -> torch.Tensor | SparseTensor:
        """``model.encode_3d(voxels)`` through a graph (see the class docstring). For a VoxelNet the BEV map is the
        graph's own buffer, overwritten by the next frame of the same size bucket."""
        missing = [key for key in HARD_VOXEL_KEYS if key not in voxels]
        if missing:
            raise ValueError(f"GraphedDetector needs hard voxels {HARD_VOXEL_KEYS}; missing {missing}")
        batch_size = int(voxels["batch_size"])
        output = self.runner_3d()(voxels["voxels"], voxels["coors"], batch_size, voxels["num_points"])
        if not self.adaptive:
            return output
        features, indices, records = output
        if self.copy_outputs:
            records = [[t.clone() for t in tensors] for tensors in records]
        self.model.last_pruning = self._records(self.model.drop_3d_stages, records)
        occupied = int((indices[:, 0] >= 0).sum())  # the occupied pixels come first, padding rows after them
        features, indices = features[:occupied], indices[:occupied]
        if self.copy_outputs:
            features, indices = features.clone(), indices.clone()
        return SparseTensor(features, indices, self.model.grid.shape, batch_size, validate=False)

    def encode_2d(self, bev: torch.Tensor | SparseTensor) -> list[torch.Tensor | SparseBevMap]:
        """``model.encode_2d(bev)`` through a graph (a :class:`SparseBevMap` keeps the graph's padding rows)."""
        if self.adaptive:
            if not isinstance(bev, SparseTensor):
                raise TypeError(f"Ada3D's 2D part takes the occupied BEV pixels as a SparseTensor, got {type(bev)}")
            maps, record = self.runner_2d()(bev.features, bev.indices, bev.batch_size)  # copies if copy_outputs
            self.model.keep_record(*self._records(("bev",), [record]))
            return self._sparse_maps(maps, bev.batch_size)
        return self.runner_2d()(bev)

    def extract_feat(self, inputs: dict) -> list[torch.Tensor]:
        """The head's feature maps of ``inputs['voxels']``: both parts, through graphs."""
        return self.encode_2d(self.encode_3d(inputs["voxels"]))

    def _encode_3d_rows(
        self, voxels: torch.Tensor, coors: torch.Tensor, batch_size: int, num_points: torch.Tensor
    ) -> torch.Tensor | tuple:
        """The 3D part on (padded) rows: the dense BEV map, or for Ada3D the occupied pixels' features and indices
        and each 3D drop stage's record tensors (:meth:`_record_tensors`)."""
        output = self.model.encode_3d(dict(voxels=voxels, num_points=num_points, coors=coors, batch_size=batch_size))
        if not self.adaptive:
            return output
        return output.features, output.indices, tuple(_record_tensors(r) for r in self.model.last_pruning)

    def _sparse_2d(self, features: torch.Tensor, indices: torch.Tensor, batch_size: int) -> tuple[list, tuple]:
        """Ada3D's 2D part on (padded) rows: the head's maps, a :class:`SparseBevMap` level as the tensors
        ``(features, indices, background)`` (a runner's outputs are tensor trees), and the pixel drop's record
        tensors."""
        bev = SparseTensor(features, indices, self.model.grid.shape, batch_size, validate=False)
        maps = self.model.encode_2d(bev)
        self._sparse_grids = [m.rows.spatial_shape for m in maps if isinstance(m, SparseBevMap)]  # fixed per model
        record = _record_tensors(self.model.last_pruning[-1])  # encode_2d's own 'bev' record
        maps = [(m.rows.features, m.rows.indices, m.background) if isinstance(m, SparseBevMap) else m for m in maps]
        return maps, record

    def _records(self, stages, tensors) -> list[PruningRecord]:
        """:class:`PruningRecord` s of ``stages`` from their :func:`_record_tensors`."""
        return [PruningRecord(stage, self.model.grid, *t) for stage, t in zip(stages, tensors)]

    def _sparse_maps(self, maps: list, batch_size: int) -> list[torch.Tensor | SparseBevMap]:
        """The 2D graph's outputs with each ``(features, indices, background)`` level back as a SparseBevMap."""
        grids = iter(self._sparse_grids)
        return [m if isinstance(m, torch.Tensor) else
                SparseBevMap(SparseTensor(m[0], m[1], next(grids), batch_size, validate=False), m[2])
                for m in maps]  # fmt: skip


def _record_tensors(record: PruningRecord) -> tuple[torch.Tensor, ...]:
    """A record's tensors, as a graph hands them out: (occupied, kept, scores, sites before, sites after)."""
    return record.occupied, record.kept, record.scores, record.sites_before, record.sites_after
