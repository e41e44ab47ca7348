"""Memory occupancy over the schedule, one panel per schedule side by side (`--plot FILE.png`).

The x axis counts layers (tensor-level ops), each layer's top-level steps spread evenly over
its unit, so the schedules line up layer by layer however many loops each emits; the y axis is
the live activation bytes, stacked per memory level. matplotlib draws it off-screen (Agg), and
the file appears only once complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tinyattn.backend.files import atomic_path
from tinyattn.driver.layer_report import Occupancy
from tinyattn.driver.lowered_model import LoweredModel


def layer_positions(timeline: Occupancy) -> list[float]:
    """Each step's x: the index of its layer plus its fraction of that layer's steps."""
    counts: dict[str, int] = {}
    for layer in timeline.layers:
        counts[layer] = counts.get(layer, 0) + 1
    order = list(dict.fromkeys(timeline.layers))
    seen: dict[str, int] = {}
    positions = []
    for layer in timeline.layers:
        positions.append(order.index(layer) + seen.get(layer, 0) / counts[layer])
        seen[layer] = seen.get(layer, 0) + 1
    return positions


def plot_occupancy(path: Path | str, schedules: Mapping[str, LoweredModel], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(
        1, len(schedules), figsize=(6 * len(schedules), 4), sharey=True, squeeze=False
    )
    for axis, (schedule, lowered) in zip(axes[0], schedules.items(), strict=True):
        timeline = lowered.occupancy
        assert timeline is not None
        x = layer_positions(timeline)
        levels = list(timeline.live)
        axis.stackplot(x, *(timeline.live[level] for level in levels), labels=levels, step="post")
        axis.set_title(f"{schedule}: peak {lowered.activation_peak_bytes:,} B")
        axis.set_xlabel("layer")
        axis.set_ylabel("live activation bytes")
        axis.legend(loc="upper right")
        axis.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    try:
        with atomic_path(path) as scratch:
            figure.savefig(scratch, format=Path(path).suffix.lstrip(".") or "png", dpi=100)
    finally:
        pyplot.close(figure)
