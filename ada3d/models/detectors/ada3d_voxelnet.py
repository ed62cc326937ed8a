"""Ada3D (Zhao et al., ICCV 2023) on SECOND: drop unimportant voxel columns and BEV pixels, run the BEV sparse."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ada3d.models.adaptive.bev_grid import BevGrid
from ada3d.models.adaptive.column_ops import cell_counts, drop_columns, drop_pixels, site_cells
from ada3d.models.adaptive.heatmap import importance_target
from ada3d.models.adaptive.height_compression import to_bev
from ada3d.models.adaptive.importance_predictor import importance_loss
from ada3d.models.adaptive.pruning_record import PruningRecord
from ada3d.models.adaptive.sp_norm import SparsityPreservingBatchNorm
from ada3d.models.adaptive.spatial_filter import STRATEGIES
from ada3d.models.backbones.sparse_second import SparseSECOND
from ada3d.models.detectors.voxelnet import VoxelNet
from ada3d.models.necks.sparse_second_fpn import SparseSECONDFPN
from ada3d.registry import MODELS
from ada3d.structures import Det3DDataSample
from ada3d.structures.sparse_bev_map import SparseBevMap
from sparse_ops import SparseTensor

TRAIN_STAGES = ("detector", "predictor", "finetune")


def has_running_statistics(module: nn.Module) -> bool:
    """Whether ``module`` normalises by running statistics in eval mode and updates them in train mode: a torch
    BatchNorm that tracks them, or an SP-BN (its ``running_var``)."""
    norms = (nn.modules.batchnorm._BatchNorm, SparsityPreservingBatchNorm)
    return isinstance(module, norms) and module.running_var is not None


@MODELS.register_module()
class Ada3DVoxelNet(VoxelNet):
    """A :class:`VoxelNet` whose BEV backbone runs sparse on the pixels an importance predictor keeps.

    Args:
        adaptive: the Ada3D settings (every other argument is VoxelNet's; ``backbone`` must be a
            :class:`SparseSECOND`):

            * ``predictor``: :class:`ImportancePredictor` config; its ``in_channels`` are filled in (one input
              per drop stage: the voxel features' channels for ``'input'``, the stem's or an encoder stage's
              output channels, and the BEV channels under ``'bev'``).
            * ``filter``: :class:`SpatialFilter` config (``density_prior=dict(kernel, alpha, eps)`` or None).
            * ``drop_3d_stages``: where whole voxel columns are dropped, in network order: ``'input'`` (the
              voxels, before the stem: the predictor reads the voxel features), ``'conv_input'`` (after the
              stem) and / or encoder stages (``'encoder_layer1'`` ..., after the stage); see
              :meth:`~ada3d.models.middle_encoders.sparse_encoder.SparseEncoder.drop_sites`.
              ``keep_ratios_3d``: the share of occupied importance-grid cells each keeps.
            * ``keep_ratio_bev``: the share of occupied BEV pixels the 2D backbone runs on.
            * ``strategy``: how cells are ranked: ``'predictor'`` (Ada3D), ``'random'`` or ``'distance'``
              (nearest first) - the baselines of the keep-ratio sweep.
            * ``loss_weight``: weight of the predictor's MSE loss against its target.
            * ``footprint_floor``: the predictor's target is the ground-truth centre heatmap (Ada3D, ``0``, the
              default) raised to at least this value inside every box's BEV footprint
              (:func:`~ada3d.models.adaptive.heatmap.importance_target`).
            * ``train_stage``: Ada3D's three training stages: ``'detector'`` trains the detector (the predictor is
              frozen), ``'predictor'`` trains only the predictor (the detector frozen, BatchNorm statistics
              included), ``'finetune'`` trains the detector with dropping on (the predictor frozen).
            * ``norm_eval``: keep the detector's normalisation layers with running statistics (BatchNorm, SP-BN)
              in eval mode while it trains: their statistics stay those of the stage before, and training runs
              the forward that inference runs (default False: they normalise by the statistics of each batch,
              which after a drop are those of the kept sites only).

    The 3D drops run in :meth:`encode_3d` (the 3D backbone), the BEV pixel drop in :meth:`encode_2d` (the 2D
    backbone, whose first conv it thins), so each part's time and memory include its own predictor calls and drops.
    After every forward, ``last_pruning`` holds one :class:`PruningRecord` per drop stage (3D stages in order,
    then ``'bev'``). A keep ratio of 1 keeps every occupied cell and skips the predictor at inference.

    ``encode_3d`` and ``encode_2d`` also run in padded execution (:mod:`sparse_ops.kmap.capacity`), without a host
    sync, so :class:`~ada3d.models.detectors.graphed.GraphedDetector` can capture them in CUDA graphs.
    """

    def __init__(self, *, adaptive: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(self.backbone, SparseSECOND):
            raise ValueError(f"Ada3DVoxelNet needs backbone type 'SparseSECOND', got {type(self.backbone).__name__}")
        settings = dict(adaptive)
        known = {"predictor", "filter", "drop_3d_stages", "keep_ratios_3d", "keep_ratio_bev", "strategy",
                 "loss_weight", "train_stage", "footprint_floor", "norm_eval"}  # fmt: skip
        unknown = sorted(set(settings) - known)
        if unknown:
            raise ValueError(f"unknown adaptive settings {unknown}; known: {sorted(known)}")
        stage_channels = self.middle_encoder.drop_sites()
        self.drop_3d_stages = tuple(settings.get("drop_3d_stages", ()))
        missing = [name for name in self.drop_3d_stages if name not in stage_channels]
        if missing:
            raise ValueError(f"drop_3d_stages {missing} are not drop sites of the encoder; its sites, in order: "
                             f"{list(stage_channels)}")  # fmt: skip
        order = [list(stage_channels).index(name) for name in self.drop_3d_stages]
        if order != sorted(set(order)):
            raise ValueError(f"drop_3d_stages {self.drop_3d_stages} must be distinct and in network order "
                             f"{list(stage_channels)}")  # fmt: skip
        self.loss_weight = float(settings.get("loss_weight", 1.0))
        self.footprint_floor = float(settings.get("footprint_floor", 0.0))
        if not 0.0 <= self.footprint_floor <= 1.0:
            raise ValueError(f"footprint_floor must lie in [0, 1], got {self.footprint_floor}")
        self.train_stage = settings.get("train_stage", "detector")
        if self.train_stage not in TRAIN_STAGES:
            raise ValueError(f"train_stage must be one of {TRAIN_STAGES}, got {self.train_stage!r}")
        self.norm_eval = settings.get("norm_eval", False)
        if not isinstance(self.norm_eval, bool):
            raise ValueError(f"norm_eval must be True or False, got {self.norm_eval!r}")
        self.keep_ratios_3d: tuple[float, ...] = ()
        self.keep_ratio_bev = 1.0
        self.strategy = "predictor"
        self.set_keep_ratios(
            tuple(settings.get("keep_ratios_3d", (1.0,) * len(self.drop_3d_stages))),
            settings.get("keep_ratio_bev", 1.0),
            settings.get("strategy", "predictor"),
        )
        inputs = {name: stage_channels[name] for name in self.drop_3d_stages}
        inputs["bev"] = self.middle_encoder.out_channels
        self.predictor = MODELS.build(dict(settings.get("predictor", dict(type="ImportancePredictor")),
                                           in_channels=inputs))  # fmt: skip
        self.spatial_filter = MODELS.build(dict(settings.get("filter", dict(type="SpatialFilter"))))
        layer = self.data_preprocessor.voxel_layer
        self.grid = BevGrid.from_voxel_grid(layer.point_cloud_range, layer.voxel_size,
                                            self.middle_encoder.sparse_shape, self.middle_encoder.out_spatial_shape)
        self.last_pruning: list[PruningRecord] = []
        self._importance: list[torch.Tensor] = []  # predictor outputs [B, 1, H, W] of this forward (training)
        for module in self._frozen_modules():
            module.requires_grad_(False)
        self.train(self.training)  # frozen parts start in eval mode too

    def set_keep_ratios(
        self,
        keep_ratios_3d: Sequence[float] | None = None,
        keep_ratio_bev: float | None = None,
        strategy: str | None = None,
    ) -> None:
        """Change what is kept (for sweeps); ``None`` leaves a setting as it is."""
        if keep_ratios_3d is not None:
            ratios = tuple(float(r) for r in keep_ratios_3d)
            if len(ratios) != len(self.drop_3d_stages):
                raise ValueError(f"keep_ratios_3d needs one ratio per drop stage {self.drop_3d_stages}, got {ratios}")
            self.keep_ratios_3d = ratios
        if keep_ratio_bev is not None:
            self.keep_ratio_bev = float(keep_ratio_bev)
        if strategy is not None:
            if strategy not in STRATEGIES:
                raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
            self.strategy = strategy
        for ratio in (*self.keep_ratios_3d, self.keep_ratio_bev):
            if not 0.0 < ratio <= 1.0:
                raise ValueError(f"keep ratios must lie in (0, 1], got {ratio}")

    def _frozen_modules(self) -> list[nn.Module]:
        if self.train_stage == "predictor":
            return [module for name, module in self.named_children() if name not in ("predictor",
                                                                                     "data_preprocessor")]
        return [self.predictor]

    def train(self, mode: bool = True) -> Ada3DVoxelNet:
        """Train mode for the trainable part only: frozen parts stay in eval (their BatchNorm statistics fixed), and
        with ``norm_eval`` so do the normalisation layers."""
        super().train(mode)
        for module in self._frozen_modules():
            module.eval()
        if self.norm_eval:  # the detector's norms; the predictor's are trained or frozen by the stage
            predictor = set(self.predictor.modules())
            for module in self.modules():
                if module not in predictor and has_running_statistics(module):
                    module.eval()
        return self

    def encode_3d(self, voxels: dict) -> SparseTensor:
        """The 3D backbone: VFE and sparse encoder with Ada3D's voxel-column drops -> every occupied BEV pixel (2D
        :class:`SparseTensor`). Starts a new ``last_pruning`` with the 3D drop stages' records."""
        self.last_pruning, self._importance = [], []
        features = self.voxel_encoder(voxels["voxels"], voxels["num_points"])
        ratios = dict(zip(self.drop_3d_stages, self.keep_ratios_3d))

        def after_stage(name: str, x: SparseTensor) -> SparseTensor:
            return self._drop(name, x, ratios[name], drop_columns) if name in ratios else x

        return to_bev(self.middle_encoder.encode(features, voxels["coors"], voxels["batch_size"], after_stage))

    def drop_bev(self, bev: SparseTensor) -> SparseTensor:
        """Ada3D's pixel drop before the first BEV conv (the start of the 2D backbone): the occupied BEV pixels
        ``bev`` -> the kept ones. Its record replaces any earlier ``'bev'`` record in ``last_pruning``."""
        return self._drop("bev", bev, self.keep_ratio_bev, drop_pixels)

    def encode_2d(self, bev: SparseTensor) -> list[torch.Tensor | SparseBevMap]:
        """The 2D backbone: the pixel drop (:meth:`drop_bev`), then the BEV backbone and neck on the kept pixels
        -> the head's maps: dense, or with a :class:`SparseSECONDFPN` neck behind the sparse execution,
        :class:`SparseBevMap` s (the neck sparse too, in eval)."""
        kept = self.drop_bev(bev)
        if isinstance(self.neck, SparseSECONDFPN) and self.backbone.execution == "sparse":
            return list(self.neck(self.backbone.forward_sparse(kept)))
        maps = self.backbone(kept)
        return list(self.neck(maps) if self.neck is not None else maps)

    def _drop(self, stage: str, x: SparseTensor, keep_ratio: float, drop) -> SparseTensor:
        """Keep ``keep_ratio`` of the occupied importance-grid cells of ``x``; record what was kept."""
        cells = site_cells(x, self.grid.shape)
        counts = cell_counts(x, self.grid.shape, cells=cells)  # sites per cell (padding rows left out)
        occupied = counts > 0
        train_predictor = self.training and self.train_stage == "predictor"
        importance = None
        if self.strategy == "predictor" and (keep_ratio < 1.0 or train_predictor):
            importance = self.predictor(stage, x, self.grid.shape, cells, counts)
            if train_predictor:
                self._importance.append(importance)
            importance = importance[:, 0].detach()
        before = counts.flatten(1).sum(1)
        if keep_ratio >= 1.0:  # nothing ranked: the record's scores are the importance (if predicted) or 1
            scores = occupied.float() if importance is None else importance
            kept, after = occupied, before
        else:
            scores = self.spatial_filter.scores(importance, occupied, self.strategy, self.grid)
            kept = self.spatial_filter.select(scores, occupied, keep_ratio)
            x = drop(x, kept, max_kept=self._max_kept(x, keep_ratio), cells=cells)
            after = counts.where(kept, 0).flatten(1).sum(1)  # a drop keeps or removes whole cells
        self.keep_record(PruningRecord(stage, self.grid, occupied, kept, scores, before, after))
        return x

    def keep_record(self, record: PruningRecord) -> None:
        """Append ``record`` to ``last_pruning``, in place of an earlier record of the same stage (a second pixel
        drop on the same 3D output replaces the first one's)."""
        self.last_pruning = [*(r for r in self.last_pruning if r.stage != record.stage), record]

    def _max_kept(self, x: SparseTensor, keep_ratio: float) -> int | None:
        """A static bound on the sites a drop keeps, which caps its capacity in padded execution: on the importance
        grid itself (the BEV pixels) one site is one cell, and ``keep_counts`` keeps at most ``ratio * n + 1`` of a
        sample's ``n`` occupied cells, so at most ``ceil(ratio * rows) + B`` sites; None for voxel columns."""
        if x.ndim == 2 and tuple(x.spatial_shape) == tuple(self.grid.shape):
            return math.ceil(keep_ratio * x.indices.shape[0]) + x.batch_size
        return None

    def loss(self, inputs: dict, data_samples: Sequence[Det3DDataSample]) -> dict:
        """The detector's losses, or in the ``'predictor'`` stage the predictor's MSE to its target."""
        if self.train_stage != "predictor":
            return super().loss(inputs, data_samples)
        self.drop_bev(self.encode_3d(inputs["voxels"]))
        boxes = [sample.gt_instances_3d.bboxes_3d for sample in data_samples]
        target = importance_target(boxes, self.grid, self.footprint_floor).to(self._importance[0].device)
        loss = sum(importance_loss(importance, target) for importance in self._importance)
        return {"loss_importance": self.loss_weight * loss / len(self._importance)}
