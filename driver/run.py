"""The Python API behind tinyattn-compile and tinyattn-run.

compile_model: model file (.onnx or tensor-level .mlir) or module -> lowering -> upstream
pipeline -> model.o, model.h, model.ll, report.json in one output directory, written atomically.
run_model: the same, linked with a generated harness and the runtime, run on the target (QEMU or
natively) and compared with the reference (semantics/interpreter.py) of the module as given.

Every failure a user can cause (unknown target, unreadable model, bad inputs, a model that does
not fit) is a one-line DriverError; tool failures are one-line ToolchainErrors.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.utils.exceptions import DiagnosticException

from tinyattn.backend import toolchain
from tinyattn.backend.pipeline import STAGES, STAGES_SCRIPT, lower_to_object
from tinyattn.backend.targets import Memory, Target, get_target
from tinyattn.dialects.annotations import (
    PROFILE_OUTSIDE,
    entry_function,
    profile_marker,
    profile_regions,
    tensor_signature,
)
from tinyattn.dialects.memory import MemoryLevel
from tinyattn.driver.harness import (
    EXIT_ARENA_OVERRUN,
    EXIT_IO_FAILED,
    HEADER,
    STATS_FILE,
    check_entry,
    harness_source,
    input_file,
    model_header,
    output_file,
)
from tinyattn.driver.layer_report import Layer, format_layers, format_table, with_instructions
from tinyattn.driver.lower import LowerOptions, lower_module
from tinyattn.driver.lowered_model import LoweredModel, TensorSpec
from tinyattn.driver.package import PACKAGE, write_package
from tinyattn.driver.parsing import parse_module
from tinyattn.frontend.arrays import Arrays, in_order
from tinyattn.passes.fuse_weights import FuseWeights
from tinyattn.semantics.interpreter import evaluate

# f32 outputs match the reference when np.allclose(ours, reference, rtol, atol) holds. Compiled
# code sums in its own order (loop nests and tiles, not numpy's pairwise/BLAS order) and computes
# exp/erf/tanh with polynomials accurate to a few ulp, so bit-exactness is not expected; those
# effects stay orders of magnitude below 1e-4 relative, which still catches any real bug (a
# wrong index or constant shows up as O(1) errors). atol covers outputs near zero, where a
# relative bound means nothing. Integer outputs must match bit for bit.
F32_RTOL = 1e-4
F32_ATOL = 1e-5
# kept stages of tinyattn's own passes: tinyattn-<index>-<pass>.mlir (0: the input)
PASS_STAGE = "tinyattn-"
# A badly conditioned f32 model (its output moves by more than the tolerance when its inputs
# move by one float32 ulp) is judged against that movement instead: an f32 implementation rounds
# every intermediate, each rounding like such a perturbation somewhere inside, so its error can
# reach a small multiple of it however exact it is; 16 such roundings are allowed.
CONDITION_FACTOR = 16

Source = Path | str | ModuleOp | LoweredModel
Reference = Callable[[Sequence[np.ndarray]], Sequence[np.ndarray]]


class DriverError(Exception):
    """A problem with the user's model, inputs or target; the message is one line."""


@dataclass(frozen=True)
class CompileResult:
    out_dir: Path
    target: Target
    lowered: LoweredModel
    module: ModuleOp | None  # the tensor-level module; None when compiled from a LoweredModel
    code_bytes: int
    report: dict  # the contents of report.json

    @property
    def obj(self) -> Path:
        return self.out_dir / "model.o"

    @property
    def header(self) -> Path:
        return self.out_dir / HEADER


@dataclass(frozen=True)
class ProfileRow:
    """One kernel op of a profiled run (or a layer's code between kernels): how often it ran,
    the MACs and instructions of all its runs, their share, and its layer (None: outside every
    layer)."""

    kernel: str
    calls: int
    macs: int
    instructions: int
    share: float
    layer: str | None

    @property
    def mac_per_instruction(self) -> float:
        return self.macs / self.instructions if self.instructions else 0.0


def format_profile(rows: Sequence[ProfileRow]) -> str:
    """The profile for people, most expensive first; the code between kernels as one row (the
    per-layer table splits it by layer)."""
    outside = [row for row in rows if row.kernel == PROFILE_OUTSIDE]
    if outside:
        rows = [row for row in rows if row.kernel != PROFILE_OUTSIDE]
        rows.append(
            ProfileRow(
                PROFILE_OUTSIDE,
                sum(row.calls for row in outside),
                0,
                sum(row.instructions for row in outside),
                sum(row.share for row in outside),
                None,
            )
        )
    header = ("kernel", "layer", "calls", "MACs", "instructions", "MAC/instr", "share")
    body = [
        (
            row.kernel,
            row.layer or "-",
            f"{row.calls:,}",
            f"{row.macs:,}",
            f"{row.instructions:,}",
            f"{row.mac_per_instruction:.3f}" if row.macs else "-",
            f"{100 * row.share:.1f}%",
        )
        for row in sorted(rows, key=lambda r: -r.instructions)
    ]
    return format_table(header, body, left=2)


@dataclass(frozen=True)
class RunReport:
    target: str
    match: bool
    max_abs_error: float
    max_rel_error: float
    instructions: int | None  # None on the host (nothing counts there)
    macs: int
    mac_per_instruction: float | None
    params_bytes: int
    activation_peak_bytes: int
    arena_bytes: dict[str, int]  # per memory level
    code_bytes: int
    dma_bytes: int  # measured: what the run's transfers moved
    planned_dma_bytes: int  # what the compiler's schedule says they move
    level_peak_bytes: dict[str, int]  # per memory level, over the schedule
    outputs: tuple[np.ndarray, ...] = field(repr=False, compare=False)
    # The tensor-level ops as scheduled; with --profile, each one's instructions.
    layers: tuple[Layer, ...] = ()
    profile: tuple[ProfileRow, ...] = ()  # per kernel op, with --profile
    # An f32 output beyond the plain tolerance: how far one ulp of input moves the reference
    # (the match then allows CONDITION_FACTOR times that); None when not needed.
    conditioning: float | None = None

    def as_dict(self) -> dict:
        """The report without the output arrays; non-finite errors (NaN outputs) as null, so
        the result is strict JSON."""
        fields = {k: v for k, v in asdict(self).items() if k != "outputs"}
        if not self.profile:
            fields.pop("profile")
        fields["tolerance"] = {"f32_rtol": F32_RTOL, "f32_atol": F32_ATOL}
        if self.conditioning is not None:
            fields["tolerance"]["condition_factor"] = CONDITION_FACTOR
        return {
            k: None if isinstance(v, float) and not np.isfinite(v) else v for k, v in fields.items()
        }

    def _criterion(self) -> str:
        plain = f"rtol {F32_RTOL:g}, atol {F32_ATOL:g} for f32; exact for int"
        if self.conditioning is None:
            return plain
        return (
            f"{plain}; plus {CONDITION_FACTOR} x {self.conditioning:.3g}, the reference's "
            "change under one-ulp input changes"
        )

    def format(self) -> str:
        """The report for people: match and errors, instructions, memory."""
        verdict = "yes" if self.match else "NO"
        count = "not counted on host" if self.instructions is None else f"{self.instructions:,}"
        if self.mac_per_instruction is not None:
            count += f" ({self.mac_per_instruction:.3f} MAC/instruction)"
        arenas = ", ".join(f"{level} {size:,} B" for level, size in self.arena_bytes.items())
        peaks = ", ".join(f"{level} {size:,} B" for level, size in self.level_peak_bytes.items())
        rows = [
            ("target", self.target),
            ("match", f"{verdict} ({self._criterion()})"),
            ("max abs error", f"{self.max_abs_error:.3g}"),
            ("max rel error", f"{self.max_rel_error:.3g}"),
            ("instructions", count),
            ("MACs", f"{self.macs:,}"),
            ("params", f"{self.params_bytes:,} B"),
            ("activations", f"{self.activation_peak_bytes:,} B peak ({peaks or 'none live'})"),
            ("arenas", arenas or "none"),
            ("code", f"{self.code_bytes:,} B"),
            ("DMA traffic", f"{self.dma_bytes:,} B (planned {self.planned_dma_bytes:,} B)"),
        ]
        text = "\n".join(f"{name:<14} {value}" for name, value in rows)
        if self.profile:
            counted = sum(row.instructions for row in self.profile)
            ratio = (
                f", {counted / self.instructions:.1%} of the count above"
                if self.instructions
                else ""
            )
            text += (
                f"\n\nprofile (instrumented build: {counted:,} instructions{ratio})\n"
                + format_profile(self.profile)
            )
        return text

    def layer_table(self, fmt: str = "text") -> str:
        """The per-layer table (format_layers); as text, after a profile, with what the
        instrumented build counted outside every layer."""
        table = format_layers(self.layers, fmt)
        if fmt != "text" or not self.profile:
            return table
        counted = sum(row.instructions for row in self.profile)
        outside = sum(row.instructions for row in self.profile if row.layer is None)
        return (
            f"{table}\ninstructions: {counted:,} counted in the instrumented build, "
            f"{outside:,} of them outside every layer (the call, the entry's prologue)"
        )


def _target(target: str | Target) -> Target:
    if isinstance(target, Target):
        return target
    try:
        return get_target(target)
    except ValueError as error:
        raise DriverError(str(error)) from None


def parse_mlir(path: Path) -> ModuleOp:
    """A module (of any stage of the pipeline) from a .mlir file, parsed and verified."""
    try:
        return parse_module(path.read_text(), str(path))
    except DiagnosticException as error:
        raise DriverError(str(error)) from None


def load_model(path: Path | str, sample_inputs: Arrays | None = None) -> ModuleOp:
    """The tensor-level module of a .onnx or .mlir file; `sample_inputs` give an integerised
    ONNX graph's inputs their signedness (import_model)."""
    path = Path(path)
    if not path.is_file():
        raise DriverError(f"{path}: no such file")
    if path.suffix == ".onnx":
        from tinyattn.frontend.onnx_import import OnnxImportError, import_model

        try:
            return import_model(path, sample_inputs)
        except OnnxImportError as error:
            raise DriverError(f"{path}: {error}") from None
    if path.suffix == ".mlir":
        return parse_mlir(path)
    raise DriverError(f"{path}: unknown model format (expected .onnx or .mlir)")


def lower(module: ModuleOp, target: str | Target, options: LowerOptions) -> LoweredModel:
    """lower_module, with its diagnostics (a budget that cannot fit, an op it cannot lower) as
    one-line driver errors that name the target."""
    target = _target(target)
    if not re.fullmatch(r"[A-Za-z_]\w*", options.name):
        raise DriverError(f"model name '{options.name}' is not a C identifier")
    try:
        return lower_module(module, target, options)
    except DiagnosticException as error:
        raise DriverError(f"{target.name}: {str(error).splitlines()[0]}") from None


def _lowered(
    source: Source, target: Target, options: LowerOptions | None, inputs: Arrays | None = None
) -> tuple[ModuleOp | None, LoweredModel]:
    if isinstance(source, LoweredModel):
        return None, source
    module = source if isinstance(source, ModuleOp) else load_model(source, inputs)
    return module, lower(module, target, options or LowerOptions())


def check_fits(lowered: LoweredModel, target: Target) -> None:
    """Fail early, with the numbers, when the arenas (plus the stack, which shares L2) or the
    weights exceed the target's memories; the linker has the last word on runnable targets."""
    regions = {MemoryLevel.L1: target.l1, MemoryLevel.L2: target.l2}
    needed: dict[Memory, int] = {target.l2: target.stack_size}
    for arena in lowered.arenas:
        memory = regions[arena.level]
        needed[memory] = needed.get(memory, 0) + arena.size
    for memory, size in needed.items():
        if size > memory.size:
            users = [
                f"{a.level} arena {a.size}" for a in lowered.arenas if regions[a.level] == memory
            ]
            if memory == target.l2:
                users.append(f"stack {target.stack_size}")
            raise DriverError(
                f"model does not fit {target.name}: {' + '.join(users)} bytes exceed "
                f"{memory.name} ({memory.size} bytes) by {size - memory.size} bytes"
            )
    if target.flash is not None and lowered.params_bytes > target.flash.size:
        raise DriverError(
            f"model does not fit {target.name}: {lowered.params_bytes} bytes of weights exceed "
            f"{target.flash.name} ({target.flash.size} bytes)"
        )


@contextmanager
def _staged(out_dir: Path, owned: Collection[str] = ()) -> Iterator[Path]:
    """A scratch directory next to out_dir whose files move into out_dir only on success, so a
    failure leaves out_dir as it was (and creates none). In an existing out_dir, an entry that
    `owned` matches (names or glob patterns of what a compile may write) and this one did not
    write is removed as stale;
    other files stay. The directory gets the permissions the user's umask gives."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    scratch.chmod(0o777 & ~umask)
    try:
        yield scratch
        if out_dir.is_dir():
            produced = {path.name for path in scratch.iterdir()}
            stale = {p.name for p in out_dir.iterdir() if any(fnmatch(p.name, o) for o in owned)}
            for name in stale | produced:
                old = out_dir / name
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old)
                elif name not in produced:
                    old.unlink(missing_ok=True)
            for path in scratch.iterdir():
                os.replace(path, out_dir / path.name)
        else:
            os.replace(scratch, out_dir)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _footprint(lowered: LoweredModel, target: Target, code: int, stack: int) -> dict:
    """What the model takes of the target's memories: ROM (weights + code) and RAM (arenas +
    the input and output buffers + the entry's stack frame), and their shares (of the flash;
    of all memory levels together)."""
    rom = lowered.params_bytes + code
    io_bytes = sum(spec.nbytes for spec in (*lowered.inputs, *lowered.outputs))
    ram = sum(arena.size for arena in lowered.arenas) + io_bytes + stack
    return {
        "io_bytes": io_bytes,
        "rom_bytes": rom,
        "ram_bytes": ram,
        "rom_share": rom / target.flash.size if target.flash else None,
        "ram_share": ram / sum(memory.size for memory in target.levels),
    }


def _spec_json(spec: TensorSpec) -> dict:
    return {"name": spec.name, "shape": list(spec.shape), "dtype": np.dtype(spec.dtype).name}


def _compile(
    module: ModuleOp | None,
    lowered: LoweredModel,
    target: Target,
    out_dir: Path,
    keep_stages: bool,
    package: bool = True,
) -> CompileResult:
    """model.o, model.h and report.json into out_dir, with the C package unless a run only
    needs the object (`package` False)."""
    try:
        check_entry(lowered)
    except ValueError as error:
        raise DriverError(str(error)) from None
    check_fits(lowered, target)
    owned = (*STAGES, STAGES_SCRIPT, f"{PASS_STAGE}*.mlir", *PACKAGE)
    with _staged(out_dir, owned) as scratch:
        artifacts = lower_to_object(lowered.module, lowered.entry, target, scratch, keep_stages)
        if keep_stages:
            for index, (name, text) in enumerate(lowered.stages):
                (scratch / f"{PASS_STAGE}{index}-{name}.mlir").write_text(text + "\n")
        (scratch / HEADER).write_text(model_header(lowered, target, artifacts.stack_bytes))
        if package:
            write_package(scratch, lowered, target, toolchain.cache_dir())
        report = {
            "target": target.name,
            "entry": lowered.entry,
            "pipeline": lowered.pipeline,
            "params_bytes": lowered.params_bytes,
            "macs": lowered.macs,
            "activation_peak_bytes": lowered.activation_peak_bytes,
            "l1_peak_bytes": lowered.level_peak_bytes.get(MemoryLevel.L1, 0),
            "l2_peak_bytes": lowered.level_peak_bytes.get(MemoryLevel.L2, 0),
            "dma_bytes": lowered.dma_bytes,
            "code_bytes": artifacts.code_bytes,
            "stack_bytes": artifacts.stack_bytes,
            **_footprint(lowered, target, artifacts.code_bytes, artifacts.stack_bytes),
            "arenas": {arena.level: arena.size for arena in lowered.arenas},
            "layers": [asdict(layer) for layer in lowered.layers],
            "inputs": [_spec_json(spec) for spec in lowered.inputs],
            "outputs": [_spec_json(spec) for spec in lowered.outputs],
        }
        (scratch / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return CompileResult(out_dir, target, lowered, module, artifacts.code_bytes, report)


def compile_model(
    source: Source,
    target: str | Target,
    out_dir: Path | str,
    keep_stages: bool = False,
    options: LowerOptions | None = None,
) -> CompileResult:
    """Compile a model for `target` into out_dir: model.o, model.h, model.ll, report.json and,
    with keep_stages, the pipeline's intermediate files. `options` steer the lowering
    (lower_module); a LoweredModel source skips it."""
    target = _target(target)
    options = replace(options or LowerOptions(), keep_stages=keep_stages)
    module, lowered = _lowered(source, target, options)
    return _compile(module, lowered, target, Path(out_dir), keep_stages)


def load_inputs(path: Path | str) -> dict[str, np.ndarray]:
    """The arrays of an .npz file, in file order."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except FileNotFoundError:
        raise DriverError(f"{path}: no such file") from None
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise DriverError(f"{path}: not a readable .npz file ({error})") from None


def _ordered(arrays: Arrays, specs: Sequence[TensorSpec], what: str, verb: str) -> list[np.ndarray]:
    """`arrays` in the order of `specs`, by name else by position (in_order)."""
    try:
        return in_order([spec.name for spec in specs], arrays, verb)
    except ValueError as error:
        raise DriverError(f"{what}: {error}") from None


def _exactly(array: np.ndarray, dtype: np.dtype, name: str) -> np.ndarray:
    """`array` converted to `dtype` when that keeps every value exactly: integers of another
    width that fit (integer test vectors hold int64 true values), floats holding exact integers
    for an integer input, float64 or integers holding exact float32 values for a float one."""
    if array.dtype == dtype or array.dtype.kind not in "iuf":
        return array
    if dtype.kind in "iu":
        if array.dtype.kind == "f" and not np.array_equal(array, np.round(array)):
            raise DriverError(
                f"input '{name}': {array.dtype} values that are not integers; the input is {dtype}"
            )
        info = np.iinfo(dtype)
        low, high = (array.min(initial=0), array.max(initial=0)) if array.size else (0, 0)
        if low < info.min or high > info.max:
            raise DriverError(
                f"input '{name}': values in [{low:.0f}, {high:.0f}] do not fit {dtype} "
                f"[{info.min}, {info.max}]"
            )
        return array.astype(dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(dtype)
    if not np.array_equal(converted.astype(array.dtype), array, equal_nan=True):
        raise DriverError(
            f"input '{name}': {array.dtype} values that {dtype} does not hold exactly"
        )
    return converted


def _as_input(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """`array` as the input `spec` describes: its shape, and values its dtype holds exactly."""
    dtype = np.dtype(spec.dtype)
    if array.shape != spec.shape:
        raise DriverError(
            f"input '{spec.name}': expected {dtype} {list(spec.shape)}, "
            f"got {array.dtype} {list(array.shape)}"
        )
    if dtype.kind == "f" and array.dtype.kind == "f" and not np.isfinite(array).all():
        raise DriverError(f"input '{spec.name}' holds NaN or infinite values")
    array = _exactly(array, dtype, spec.name)
    if array.dtype != dtype:
        raise DriverError(
            f"input '{spec.name}': expected {dtype} {list(spec.shape)}, "
            f"got {array.dtype} {list(array.shape)}"
        )
    return np.ascontiguousarray(array)


def match_inputs(arrays: Arrays, specs: Sequence[TensorSpec]) -> list[np.ndarray]:
    """The model's inputs in order: by name when every input name is present, else by position;
    each must have exactly the spec's shape and dtype, or be integers that fit it."""
    ordered = _ordered(arrays, specs, "inputs", "takes")
    return [_as_input(array, spec) for array, spec in zip(ordered, specs, strict=True)]


def match_expected(arrays: Arrays, specs: Sequence[TensorSpec]) -> list[np.ndarray]:
    """Expected outputs in the model's output order (by name, else by position), each of its
    output's shape; compare() checks the values."""
    ordered = _ordered(arrays, specs, "expect", "returns")
    for spec, array in zip(specs, ordered, strict=True):
        if array.shape != spec.shape or array.dtype.kind not in "iuf":
            raise DriverError(
                f"expect: output '{spec.name}' is {np.dtype(spec.dtype)} {list(spec.shape)}; "
                f"got {array.dtype} {list(array.shape)}"
            )
    return ordered


def random_inputs(specs: Sequence[TensorSpec], seed: int) -> list[np.ndarray]:
    """Float inputs standard normal, integer inputs uniform over their dtype's range."""
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in specs:
        dtype = np.dtype(spec.dtype)
        if dtype.kind == "f":
            arrays.append(rng.standard_normal(spec.shape).astype(dtype))
        else:
            info = np.iinfo(dtype)
            arrays.append(rng.integers(info.min, info.max, spec.shape, dtype, endpoint=True))
    return arrays


def _as_fused(module: ModuleOp, options: LowerOptions) -> ModuleOp:
    """The tensor-level program the compiler builds: the module after the chosen FWSA, which is
    exact in f32 and re-quantized in int8 (the code must match it bit for bit)."""
    fused = module.clone()
    FuseWeights(mode=options.fuse_weights).apply(Context(), fused)
    return fused


def _tensor_reference(module: ModuleOp) -> Reference:
    """The golden model of the module's entry function (the one lowered): the interpreter on
    the module as given, at whatever stage of the pipeline it is."""
    try:
        function = entry_function(module)
    except DiagnosticException as error:
        raise DriverError(str(error)) from None
    shapes = [t.get_shape() for t in tensor_signature(function).inputs.data]

    def reference(inputs: Sequence[np.ndarray]) -> Sequence[np.ndarray]:
        args = [x.reshape(shape) for x, shape in zip(inputs, shapes, strict=True)]
        return evaluate(module, args, entry=function.sym_name.data)

    return reference


@dataclass(frozen=True)
class Comparison:
    """One output against its reference. `conditioning`: for an f32 output that misses the
    plain tolerance, the largest change of the reference when the inputs change by one float32
    ulp (`input_sensitivity`); None where it was not needed."""

    match: bool
    abs_error: float
    rel_error: float
    conditioning: float | None = None


def compare(
    ours: np.ndarray, reference: np.ndarray, conditioning: float | None = None
) -> Comparison:
    """f32 within F32_RTOL/F32_ATOL of the reference (or, given the model's `conditioning`,
    within CONDITION_FACTOR times it; NaN where the reference has NaN), integers exactly."""
    if ours.size != reference.size:
        raise DriverError(f"an output has {ours.size} elements; the reference has {reference.size}")
    ours = ours.reshape(reference.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        wide_ours, wide_reference = ours.astype(np.float64), reference.astype(np.float64)
        same = (wide_ours == wide_reference) | (np.isnan(wide_ours) & np.isnan(wide_reference))
        difference = np.where(same, 0.0, np.abs(wide_ours - wide_reference))
        difference = np.where(np.isnan(difference), np.inf, difference)
    abs_error = float(difference.max(initial=0.0))
    finite = np.abs(wide_reference[np.isfinite(wide_reference)])
    scale = float(finite.max(initial=0.0))
    rel_error = abs_error / scale if scale else (0.0 if abs_error == 0 else float("inf"))
    if reference.dtype.kind != "f":
        return Comparison(bool(np.array_equal(ours, reference)), abs_error, rel_error)
    allowed = F32_ATOL + F32_RTOL * np.abs(np.where(np.isfinite(wide_reference), wide_reference, 0))
    if conditioning is not None:
        allowed = allowed + CONDITION_FACTOR * conditioning
    match = bool((difference <= allowed).all())
    return Comparison(match, abs_error, rel_error, conditioning)


def input_sensitivity(
    reference: Reference, inputs: Sequence[np.ndarray], seed: int = 0
) -> list[float]:
    """Per output, how far the reference moves when every float input moves by one float32
    ulp (two random directions, the larger movement): what rounding alone does to this model's
    outputs, however exactly an implementation computes."""
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        base = [np.asarray(r, np.float64) for r in reference(inputs)]
        moved = [0.0] * len(base)
        for _ in range(2):
            nudged = [_nudged(x, rng) for x in inputs]
            for index, (out, ref) in enumerate(zip(reference(nudged), base, strict=True)):
                change = np.nan_to_num(np.abs(np.asarray(out, np.float64) - ref), nan=0.0)
                moved[index] = max(moved[index], float(change.max(initial=0.0)))
    return moved


def _nudged(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A float32 array with each element one ulp up or down at random; others as they are."""
    if x.dtype != np.float32:
        return x
    direction = np.where(rng.random(x.shape) < 0.5, -np.inf, np.inf).astype(np.float32)
    return np.nextafter(x, direction)


@contextmanager
def _directory(path: Path | str | None) -> Iterator[Path]:
    if path is not None:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="tinyattn-run-") as scratch:
        yield Path(scratch)


def run_model(
    source: Source,
    target: str | Target,
    inputs: Arrays | None = None,
    seed: int = 0,
    work_dir: Path | str | None = None,
    options: LowerOptions | None = None,
    reference: Reference | None = None,
    build_dir: Path | str | None = None,
    expect: Arrays | None = None,
    profile: bool = False,
) -> RunReport:
    """Compile, link with a harness and the runtime, run on `target`, and compare the outputs
    with `expect`, the stored outputs of these inputs (match_expected), or else with
    `reference` (default: the numpy interpreter on the tensor-level module). `profile` adds
    the instructions of each kernel op (from a second, instrumented build).

    Inputs are matched to the model's by name or position (match_inputs), and give an
    integerised ONNX model's inputs their signedness; without them they are random from `seed`.
    work_dir keeps the build and the run's files (default: a temporary directory); build_dir
    caches the runtime and the QEMU plugin across runs (default: toolchain.cache_dir()).
    """
    target = _target(target)
    if not target.runnable:
        raise DriverError(
            f"{target.name} is compile-only (QEMU cannot run it); use tinyattn-compile"
        )
    if profile and (target.is_host or isinstance(source, LoweredModel)):
        raise DriverError("--profile needs a model file or module and an emulated target")
    if expect is not None and reference is not None:
        raise DriverError("pass a reference or expected outputs, not both")
    module, lowered = _lowered(source, target, options, inputs)
    if expect is None and reference is None:
        if module is None:
            raise DriverError("a LoweredModel has no tensor-level module: pass a reference")
        reference = _tensor_reference(_as_fused(module, options or LowerOptions()))
    arrays = (
        random_inputs(lowered.inputs, seed)
        if inputs is None
        else match_inputs(inputs, lowered.inputs)
    )
    if expect is not None:
        expected = match_expected(expect, lowered.outputs)
    else:
        try:
            with np.errstate(all="ignore"):  # overflow in the model is for compare to judge
                expected = [np.asarray(r) for r in reference(arrays)]
        except MemoryError as error:
            reason = str(error).splitlines()[0][:200] if str(error) else "out of memory"
            message = f"the reference does not fit this machine's memory: {reason}"
            raise DriverError(message) from None
    build = Path(build_dir) if build_dir is not None else toolchain.cache_dir()
    with _directory(work_dir) as work:
        compiled, result, outputs, dma_bytes = _build_and_run(
            module, lowered, target, arrays, work, build
        )
        regions: tuple[ProfileRow, ...] = ()
        if profile:
            assert module is not None  # checked before the first build
            regions = _profile(module, target, options, arrays, work / "profile", build)
    if len(expected) != len(outputs):
        raise DriverError(f"the model has {len(outputs)} outputs; the reference {len(expected)}")
    results = [compare(ours, ref) for ours, ref in zip(outputs, expected, strict=True)]
    if reference is not None and not all(result.match for result in results):
        movements = input_sensitivity(reference, arrays)
        results = [
            compare(ours, ref, moved) if ref.dtype.kind == "f" and not result.match else result
            for ours, ref, moved, result in zip(outputs, expected, movements, results, strict=True)
        ]
    instructions = result.instructions
    layers = lowered.layers
    if regions:
        layers = with_instructions(layers, ((row.layer, row.instructions) for row in regions))
    return RunReport(
        target=target.name,
        match=all(result.match for result in results),
        max_abs_error=max((result.abs_error for result in results), default=0.0),
        max_rel_error=max((result.rel_error for result in results), default=0.0),
        conditioning=max(
            (r.conditioning for r in results if r.conditioning is not None), default=None
        ),
        instructions=instructions,
        macs=lowered.macs,
        mac_per_instruction=lowered.macs / instructions if instructions else None,
        params_bytes=lowered.params_bytes,
        activation_peak_bytes=lowered.activation_peak_bytes,
        arena_bytes={arena.level: arena.size for arena in lowered.arenas},
        code_bytes=compiled.code_bytes,
        dma_bytes=dma_bytes,
        planned_dma_bytes=lowered.dma_bytes,
        level_peak_bytes=lowered.level_peak_bytes,
        layers=layers,
        profile=regions,
        outputs=outputs,
    )


def _build_and_run(
    module: ModuleOp | None,
    lowered: LoweredModel,
    target: Target,
    arrays: Sequence[np.ndarray],
    work: Path,
    build: Path,
) -> tuple[CompileResult, toolchain.RunResult, tuple[np.ndarray, ...], int]:
    """Compile `lowered` into work/, link it with a harness and the runtime, run it on
    `arrays`: the compile, the run, the outputs and the DMA bytes moved. An instrumented
    model's profiling regions are counted (toolchain.run's profile_markers)."""
    compiled = _compile(module, lowered, target, work / "model", keep_stages=False, package=False)
    (work / "harness.c").write_text(harness_source(lowered))
    harness = toolchain.compile_c(
        target, work / "harness.c", work / "harness.o", extra_flags=(f"-I{compiled.out_dir}",)
    )
    runtime = toolchain.build_runtime(target, build)
    elf = toolchain.link(target, [compiled.obj, harness, *runtime], work / "model.elf")
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    for index, array in enumerate(arrays):
        (run_dir / input_file(index)).write_bytes(array.tobytes())
    markers = [profile_marker(i) for i in range(len(profile_regions(lowered.module)))]
    result = toolchain.run(target, elf, run_dir, build_dir=build, profile_markers=markers)
    if result.exit_code != 0:
        reason = {EXIT_IO_FAILED: " (file I/O)", EXIT_ARENA_OVERRUN: " (arena overrun)"}
        console = " | ".join(result.console.strip().splitlines()[-3:])
        raise DriverError(
            f"{elf.name} failed on {target.name} with exit code {result.exit_code}"
            f"{reason.get(result.exit_code, '')}: {console}"
        )
    outputs = tuple(
        np.fromfile(run_dir / output_file(index), np.dtype(spec.dtype)).reshape(spec.shape)
        for index, spec in enumerate(lowered.outputs)
    )
    dma_bytes = int(np.fromfile(run_dir / STATS_FILE, "<u8")[0])
    return compiled, result, outputs, dma_bytes


def _profile(
    module: ModuleOp,
    target: Target,
    options: LowerOptions | None,
    arrays: Sequence[np.ndarray],
    work: Path,
    build: Path,
) -> tuple[ProfileRow, ...]:
    """The instructions of each kernel op, from a second build whose kernels are marked as
    profiling regions (the markers' calls cost a few instructions each: that build's total
    is not the model's count)."""
    profiled = lower(module, target, replace(options or LowerOptions(), profile=True))
    _, result, _, _ = _build_and_run(module, profiled, target, arrays, work, build)
    regions = profile_regions(profiled.module)
    if result.profile is None or len(result.profile) != len(regions):
        raise DriverError(f"{target.name}: the profiler counted no regions")
    total = sum(spent for spent, _ in result.profile) or 1
    return tuple(
        ProfileRow(region.label, entries, region.macs * entries, spent, spent / total, region.layer)
        for region, (spent, entries) in zip(regions, result.profile, strict=True)
    )
