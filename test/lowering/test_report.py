"""The schedule as reported: report.json's peaks and DMA bytes, `tinyattn-compile --report`'s
per-layer table and `--plot`'s occupancy figure, checked against what the tiling passes plan."""

from __future__ import annotations

import csv
import json
from math import prod
from pathlib import Path

import pytest
from handwritten import needs_pipeline

from tinyattn.backend.targets import get_target
from tinyattn.dialects.annotations import LAYER_ATTR, PROFILE_OUTSIDE, profile_regions
from tinyattn.driver.lower import LowerOptions, lower_module
from tinyattn.driver.run import load_model
from tinyattn.passes import depth_first_tile, layerwise_tile
from tinyattn.tools import compile as compile_tool
from tinyattn.tools.memory_plot import layer_positions

MODELS = Path(__file__).resolve().parents[2] / "models"
EEG = (81, 32, 32, 8)  # S, E, P, H


def _raw_bytes(tiles) -> int:
    return sum(prod(shape) * 4 for shape in tiles)


@pytest.mark.parametrize(
    "schedule, rows",
    [("depth-first", 9), ("layerwise", 27)],  # the largest divisors of S = 81 that fit 64 KiB
)
def test_the_attention_layers_l1_is_the_working_set_the_pass_planned(schedule, rows):
    options = LowerOptions(schedule=schedule, fuse_weights="never", l1_bytes=64 * 1024)
    lowered = lower_module(load_model(MODELS / "eeg.onnx"), get_target("cortex-m7"), options)
    attention = [layer for layer in lowered.layers if layer.op == "tinyattn.mhsa"]
    assert len(attention) == 2
    s, e, p, h = EEG
    if schedule == "depth-first":
        planned = depth_first_tile.l1_bytes_needed(s, e, p, rows, fused=False)
        live = _raw_bytes(depth_first_tile.l1_tiles(s, e, p, rows, fused=False).values())
    else:
        planned = layerwise_tile.l1_bytes_needed(s, e, p, h, rows, fused=False)
        live = max(map(_raw_bytes, layerwise_tile.layer_tiles(s, e, p, h, rows, fused=False)))
    assert dict((a.level, a.size) for a in lowered.arenas)["L1"] == planned
    assert [layer.l1_peak_bytes for layer in attention] == [live, live]
    assert lowered.level_peak_bytes["L1"] == live
    assert lowered.dma_bytes == sum(layer.dma_bytes for layer in attention) > 0
    assert {layer.op for layer in lowered.layers if layer.dma_bytes} == {"tinyattn.mhsa"}


def test_single_level_targets_keep_no_l1_and_move_nothing():
    lowered = lower_module(load_model(MODELS / "ecg.onnx"), get_target("cortex-m4"))
    assert set(lowered.level_peak_bytes) == {"L2"}
    assert lowered.dma_bytes == 0
    assert lowered.activation_peak_bytes == lowered.level_peak_bytes["L2"]


@needs_pipeline
def test_compile_report_table_and_json(tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(MODELS / "radar.onnx"), "--target", "rv32", "-o", str(out), "--report"]
    assert compile_tool.main(args) == 0
    report = json.loads((out / "report.json").read_text())
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["layer", "op", "output", "params", "MACs", "MAC", "share",
                                "weights", "(B)", "L1", "peak", "(B)", "L2", "peak", "(B)", "DMA",
                                "(B)"]  # fmt: skip
    rows = table[1:-2]
    assert len(rows) == len(report["layers"]) > 1
    for row, layer in zip(rows, report["layers"], strict=True):
        cells = row.split()
        assert cells[0] == layer["name"]
        assert cells[2] == "x".join(map(str, layer["output_shape"]))
        assert cells[3] == f"{layer['params']:,}"
        assert cells[4] == f"{layer['macs']:,}"
        assert cells[6:] == [f"{layer[k]:,}" for k in
                             ("weight_bytes", "l1_peak_bytes", "l2_peak_bytes", "dma_bytes")]  # fmt: skip
    # The params are the weights' elements: float32 weights take 4 bytes each.
    assert all(layer["weight_bytes"] == 4 * layer["params"] for layer in report["layers"])
    (head,) = [layer for layer in report["layers"] if layer["name"] == "/head/Gemm"]
    assert head["op"] == "tinyattn.linear" and len(head["output_shape"]) == 1
    # Layers are named after the ONNX nodes they came from (a reshape the importer adds is not).
    assert any(layer["name"].startswith("/") for layer in report["layers"])
    # A compile runs nothing: no layer's instructions are known (tinyattn-run --profile counts).
    assert all(layer["instructions"] is None for layer in report["layers"])
    assert sum(layer["macs"] for layer in report["layers"]) == report["macs"]
    assert sum(layer["dma_bytes"] for layer in report["layers"]) == report["dma_bytes"] > 0
    assert max(report["l1_peak_bytes"], report["l2_peak_bytes"]) <= report["activation_peak_bytes"]
    assert report["activation_peak_bytes"] <= report["l1_peak_bytes"] + report["l2_peak_bytes"]
    assert table[-2].startswith(f"total: {report['macs']:,} MACs")
    target = get_target("rv32")
    assert report["rom_bytes"] == report["params_bytes"] + report["code_bytes"]
    arenas = sum(report["arenas"].values())
    assert report["ram_bytes"] == arenas + report["io_bytes"] + report["stack_bytes"]
    assert report["rom_share"] == pytest.approx(report["rom_bytes"] / target.flash.size)
    assert table[-1].startswith(f"ROM {report['rom_bytes']:,} B")


@needs_pipeline
@pytest.mark.parametrize("fmt", ["csv", "md"])
def test_compile_report_formats(fmt, tmp_path, capsys):
    out = tmp_path / "out"
    args = [str(MODELS / "ecg.onnx"), "--target", "cortex-m4", "-o", str(out), "--report"]
    assert compile_tool.main([*args, "--report-format", fmt]) == 0
    layers = json.loads((out / "report.json").read_text())["layers"]
    lines = capsys.readouterr().out.splitlines()
    if fmt == "csv":
        rows = list(csv.reader(lines))
        assert rows[0][:5] == ["layer", "op", "output", "params", "MACs"]
        assert len(rows) == len(layers) + 1
        assert [int(row[4]) for row in rows[1:]] == [layer["macs"] for layer in layers]
        assert sum(float(row[5]) for row in rows[1:]) == pytest.approx(1, abs=1e-3)
    else:
        assert lines[0].startswith("| layer | op | output | params | MACs |")
        assert lines[1].startswith("|---|")
        assert len(lines) == len(layers) + 2


@needs_pipeline
def test_compile_plot_draws_both_schedules(tmp_path):
    plot = tmp_path / "memory.png"
    args = [str(MODELS / "ecg.onnx"), "--target", "cortex-m7", "-o", str(tmp_path / "out")]
    assert compile_tool.main([*args, "--plot", str(plot)]) == 0
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@needs_pipeline
def test_plot_names_layers_levels_capacities_and_options(tmp_path):
    """The figure's text (SVG keeps it): ONNX node names on the axis, each level's capacity,
    the options in the title."""
    plot = tmp_path / "memory.svg"
    args = [str(MODELS / "ecg.onnx"), "--target", "cortex-m7", "-o", str(tmp_path / "out")]
    assert compile_tool.main([*args, "--plot", str(plot), "--fuse-weights", "never"]) == 0
    text = plot.read_text()
    for expected in ("L1 capacity", "L2 capacity", "fuse-weights never", "/head/Gemm"):
        assert expected in text, expected


def test_plot_into_a_missing_directory_is_one_line_and_writes_nothing(tmp_path, capsys):
    args = [str(MODELS / "ecg.onnx"), "--target", "cortex-m7", "-o", str(tmp_path / "out")]
    assert compile_tool.main([*args, "--plot", str(tmp_path / "no" / "memory.png")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("tinyattn-compile: error: ") and error.count("\n") == 1
    assert not (tmp_path / "no").exists()


def test_layer_positions_spread_each_layers_steps_over_its_unit():
    from tinyattn.driver.layer_report import Occupancy

    timeline = Occupancy(("a", "a", "b", "c", "c", "c", "c"), {"L2": (0,) * 7})
    assert layer_positions(timeline) == [0, 0.5, 1, 2, 2.25, 2.5, 2.75]


@pytest.mark.parametrize("profile", [False, True])
def test_layer_tags_reach_the_profiling_regions_and_stop_there(profile):
    """Every kernel's profiling region knows its layer, each layer has one region for its code
    between kernels, and no layer tag is left in the module handed to LLVM. Layer names are
    unique, also where one ONNX node gave several ops (cct's Transpose: reshape, transpose,
    reshape)."""
    lowered = lower_module(
        load_model(MODELS / "cct.onnx"), get_target("cortex-m4"), LowerOptions(profile=profile)
    )
    assert LAYER_ATTR not in str(lowered.module)
    names = [layer.name for layer in lowered.layers]
    assert len(set(names)) == len(names)
    regions = profile_regions(lowered.module)
    if not profile:
        assert not regions
        return
    assert regions[0].layer is None
    kernels = [region for region in regions if region.label != PROFILE_OUTSIDE]
    assert kernels and all(region.layer in names for region in kernels)
    between = [region.layer for region in regions[1:] if region.label == PROFILE_OUTSIDE]
    assert len(set(between)) == len(between) and set(between) <= set(names)
    assert {region.layer for region in kernels} <= set(between)


def test_layer_names_stay_unique_when_a_suffix_is_a_node_name():
    """Nodes `x#2`, `x`, `x`: the third `x` may not become `x#2` too."""
    from tinyattn.driver.layer_report import tag_layers
    from tinyattn.driver.parsing import parse_module

    relus = "\n".join(
        f'  %r{i} = tinyattn.relu %x {{tinyattn.onnx_node = "{node}"}} : '
        "(tensor<4xf32>) -> tensor<4xf32>"
        for i, node in enumerate(["x#2", "x", "x"])
    )
    module = parse_module(
        f"func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {{\n{relus}\n"
        "  func.return %r2 : tensor<4xf32>\n}\n",
        "names.mlir",
    )
    (function,) = module.ops
    assert [layer.name for layer in tag_layers(function)] == ["x#2", "x", "x#3"]
