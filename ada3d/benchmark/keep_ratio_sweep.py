"""The keep-ratio sweep behind ``tools/ada3d_sweep.py``: evaluate an Ada3D detector at several BEV keep ratios and
cell-selection strategies, measure the density it actually kept, plot accuracy against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ada3d.benchmark.pruning_stats import StageCounts, record_counts

PLOTTED = (("Car_3D_AP40_moderate", "Car"), ("Overall_3D_AP40_moderate", "3-class mean"))


@dataclass(frozen=True)
class SweepPoint:
    """One evaluation: the strategy, the requested ratios, the density actually kept and the metrics."""

    strategy: str
    keep_ratio_bev: float
    keep_ratios_3d: list[float] | None
    bev_kept_of_grid: float
    bev_kept_of_occupied: float
    metrics: dict[str, float]


class BevDensityMeter:
    """Sums the ``'bev'`` drop-stage counts of every forward of ``model`` (a forward hook reading
    ``model.last_pruning``)."""

    def __init__(self, model) -> None:
        self.model = model
        self.counts: StageCounts | None = None
        self._handle = model.register_forward_hook(self._collect)

    def _collect(self, module, inputs, output) -> None:
        for record in getattr(module, "last_pruning", ()):
            if record.stage == "bev":
                counts = record_counts(record, torch.zeros_like(record.occupied, dtype=torch.bool))
                self.counts = counts if self.counts is None else self.counts + counts

    def remove(self) -> None:
        self._handle.remove()


def _metric_values(metrics: dict) -> dict[str, float]:
    """Metric names without the evaluator's prefix (``'Kitti metric/Car_3D_AP40_moderate'`` -> ``'Car_...'``)."""
    return {name.rsplit("/", 1)[-1]: float(value) for name, value in metrics.items()}


def sweep(
    runner, cfg, ratios: list[float], strategies: list[str], ratios_3d: str, ratio_bev: str = "same"
) -> list[SweepPoint]:
    """Evaluate the model of an mmengine ``runner`` (built from ``cfg``, with a test loop) at every (strategy, keep
    ratio), through ``runner.test()``.

    Args:
        ratios_3d: ``'same'``: every 3D drop stage (``cfg.model.adaptive.drop_3d_stages``) keeps the swept ratio;
            ``'fixed'``: the 3D keep ratios stay as configured.
        ratio_bev: ``'same'``: the BEV pixel drop keeps the swept ratio; ``'fixed'``: it keeps the configured one
            (with ``ratios_3d='same'``, a sweep of the 3D drops alone).

    Each point records the ratios the model actually ran with.

    Raises:
        ValueError: if the model has no ``set_keep_ratios`` (not an Ada3D detector) or leaves no ``'bev'`` record.
    """
    from mmengine.model import is_model_wrapper

    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not callable(getattr(model, "set_keep_ratios", None)):
        raise ValueError(
            f"{cfg.filename}: {type(model).__name__} has no set_keep_ratios(); the sweep needs an Ada3D detector "
            "(a config with an 'adaptive' section, e.g. under configs/ada3d/)"
        )
    num_3d_stages = len(cfg.model.get("adaptive", {}).get("drop_3d_stages", ()))
    if ratio_bev == "fixed" and (ratios_3d == "fixed" or not num_3d_stages):
        raise ValueError(f"{cfg.filename}: with the BEV ratio fixed the sweep needs 3D drop stages that take the "
                         f"ratio (ratios_3d='same'), got ratios_3d={ratios_3d!r} and {num_3d_stages} 3D drop stages")
    points = []
    meter = BevDensityMeter(model)
    try:
        for strategy in strategies:
            for ratio in ratios:
                keep_3d = [ratio] * num_3d_stages if ratios_3d == "same" and num_3d_stages else None
                keep_bev = ratio if ratio_bev == "same" else None
                model.set_keep_ratios(keep_ratios_3d=keep_3d, keep_ratio_bev=keep_bev, strategy=strategy)
                meter.counts = None
                metrics = _metric_values(runner.test())
                counts = meter.counts
                if counts is None:
                    raise ValueError(f"{type(model).__name__} left no 'bev' record in last_pruning during the test")
                ran_3d = list(getattr(model, "keep_ratios_3d", ())) or None
                points.append(SweepPoint(strategy, model.keep_ratio_bev, ran_3d, counts.kept_of_grid,
                                         counts.kept_of_occupied, metrics))  # fmt: skip
    finally:
        meter.remove()
    return points


def plot(points: list[SweepPoint], path: Path, title: str) -> None:
    """AP (moderate, 3D, R40) of Car and of the 3-class mean vs kept BEV density, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PLOTTED), figsize=(5.5 * len(PLOTTED), 4.2), squeeze=False)
    strategies = list(dict.fromkeys(point.strategy for point in points))
    for axis, (key, name) in zip(axes[0], PLOTTED):
        for strategy in strategies:
            line = sorted((p.bev_kept_of_grid * 100, p.metrics.get(key, float("nan")))
                          for p in points if p.strategy == strategy)
            axis.plot(*zip(*line), marker="o", label=strategy)
        axis.set_xlabel("kept BEV density (% of the BEV grid)")
        axis.set_ylabel("AP (%)")
        axis.set_title(f"{name}: moderate 3D AP_R40")
        axis.grid(alpha=0.3)
        axis.legend(title="cells kept by")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
