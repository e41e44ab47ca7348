"""Memory occupancy over the schedule, one panel per schedule side by side (`--plot FILE.png`).

The x axis counts layers (tensor-level ops, labelled with their ONNX node names), each layer's
top-level steps spread evenly over its unit, so the schedules line up layer by layer however
many loops each emits; the y axis is the live activation bytes, stacked per memory level, one
colour per level in every panel, with each level's capacity as a dashed line of its colour.
matplotlib draws it off-screen (Agg) into memory; tinyattn-compile writes the file only after
the compilation succeeded.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

from tinyattn.dialects.memory import MemoryLevel
from tinyattn.driver.layer_report import Occupancy
from tinyattn.driver.lowered_model import LoweredModel

# One colour per memory level, in every panel and for its capacity line.
LEVEL_COLOURS = {MemoryLevel.L1: "tab:orange", MemoryLevel.L2: "tab:blue"}
# Layer names on the axis are cut to this many characters.
_LABEL_CHARS = 24


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


def render_occupancy(
    schedules: Mapping[str, LoweredModel],
    title: str,
    capacities: Mapping[MemoryLevel, int],
    fmt: str = "png",
) -> bytes:
    """The figure, encoded as `fmt` (a model without activation buffers draws a flat line);
    `capacities` are the bytes each memory level holds."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(
        1, len(schedules), figsize=(6 * len(schedules), 5), sharey=True, squeeze=False
    )
    try:
        for axis, (schedule, lowered) in zip(axes[0], schedules.items(), strict=True):
            timeline = lowered.occupancy
            assert timeline is not None
            x = layer_positions(timeline)
            levels = [level for level in timeline.live if any(timeline.live[level])]
            if levels:
                series = [timeline.live[level] for level in levels]
                colours = [LEVEL_COLOURS[level] for level in levels]
                axis.stackplot(x, *series, labels=levels, colors=colours, step="post")
            else:
                axis.plot(x or [0], [0] * len(x or [0]), label="no activation buffers")
            for level, size in capacities.items():
                axis.axhline(
                    size, linestyle="--", color=LEVEL_COLOURS[level], label=f"{level} capacity"
                )
            names = list(dict.fromkeys(timeline.layers))
            axis.set_xticks(range(len(names)))
            axis.set_xticklabels(
                [name[:_LABEL_CHARS] for name in names], rotation=60, ha="right", fontsize=6
            )
            axis.legend(loc="upper right")
            axis.set_title(f"{schedule}: peak {lowered.activation_peak_bytes:,} B")
            axis.set_ylabel("live activation bytes")
            axis.grid(alpha=0.3)
        figure.suptitle(title)
        figure.tight_layout()
        encoded = io.BytesIO()
        figure.savefig(encoded, format=fmt, dpi=100)
        return encoded.getvalue()
    finally:
        pyplot.close(figure)


def plot_format(path: Path | str) -> str:
    """The image format a plot path asks for (its suffix; png without one)."""
    return Path(path).suffix.lstrip(".").lower() or "png"
