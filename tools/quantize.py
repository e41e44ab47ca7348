"""`tinyattn-quantize`: post-training quantisation of a float model to int8 tinyattn IR.

    tinyattn-quantize model.onnx|model.mlir --calib calib.npz [-o out.mlir] [--per-tensor]
                      [--report report.json]

The calibration archive holds, for each input of the model's function (by name: `x` for the
bundled models; `arg<i>` for an unnamed argument), an array [N, *input shape] of N samples;
`python models/generate.py --calib` writes the bundled models' sets. The int8 function takes and
returns 8-bit tensors and records their scales in `tinyattn.input_scales` and
`tinyattn.output_scales` (see `tinyattn.frontend.quantize`).

The accuracy loss against the float model on the calibration set is printed on stderr, one line
per output; `--report` also writes it as JSON. Errors are one line
`tinyattn-quantize: error: <file>: <message>` on stderr with exit status 2
(`tinyattn.tools.cli`); `-o` and `--report` are written atomically, and only once both can be,
so a failed run never leaves a file behind.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.printer import Printer
from xdsl.utils.exceptions import DiagnosticException

from tinyattn.backend.files import write_all_atomically
from tinyattn.dialects.annotations import entry_function
from tinyattn.driver.parsing import parse_module
from tinyattn.driver.run import DriverError
from tinyattn.frontend.onnx_import import OnnxImportError, import_model
from tinyattn.frontend.quantize import (
    INPUT_SCALES,
    OUTPUT_SCALES,
    OutputError,
    QuantizeError,
    accuracy_loss,
    load_calibration,
    quantize,
    recorded_scales,
)
from tinyattn.tools.cli import ArgumentParser, count, model_path, run_main

PROG = "tinyattn-quantize"


def _write(files: dict[str, str]) -> None:
    """Write every file whole, or none of them."""
    try:
        write_all_atomically(files)
    except OSError as error:
        raise DriverError(f"{error.filename}: cannot write: {error.strerror or error}") from None


def _load_model(path: str) -> ModuleOp:
    """The float module: tinyattn IR if the file ends in .mlir, else an ONNX model."""
    try:
        if Path(path).suffix == ".mlir":
            return parse_module(Path(path).read_text(), path)
        return import_model(path)
    except DiagnosticException as error:  # `FILE:LINE:COL: reason`
        raise DriverError(str(error)) from None
    except OnnxImportError as error:
        raise DriverError(f"{path}: {error}") from None
    except OSError as error:
        raise DriverError(f"{path}: {error.strerror or str(error)}") from None


def _summary(error: OutputError, index: int) -> str:
    shape = "x".join(map(str, error.shape))
    line = (
        f"  output {index} ({shape}): max abs error {error.max_abs:.4g} "
        f"({100 * error.relative:.1f}% of the float range {error.float_max_abs:.4g}), "
        f"mean abs error {error.mean_abs:.4g}"
    )
    if error.argmax_agreement is not None:
        line += f", argmax agreement {100 * error.argmax_agreement:.1f}%"
    return line


def _report(module: ModuleOp, errors: list[OutputError], samples: int, per_channel: bool) -> str:
    function = entry_function(module)
    outputs = [
        {
            "shape": list(error.shape),
            "max_abs_error": error.max_abs,
            "mean_abs_error": error.mean_abs,
            "relative_error": error.relative,
            "float_max_abs": error.float_max_abs,
            "argmax_agreement": error.argmax_agreement,
        }
        for error in errors
    ]
    report = {
        "samples": samples,
        "weights": "per-channel" if per_channel else "per-tensor",
        "input_scales": recorded_scales(function, INPUT_SCALES),
        "output_scales": recorded_scales(function, OUTPUT_SCALES),
        "outputs": outputs,
    }
    return json.dumps(report, indent=2) + "\n"


def _run(args) -> int:
    with model_path(args.model) as model:
        module = _load_model(model)
    try:
        function = entry_function(module)
    except DiagnosticException as error:
        raise DriverError(f"{args.model}: {error}") from None
    if not all(isinstance(t, TensorType) for t in function.function_type.inputs):
        raise DriverError(
            f"{args.model}: @{function.sym_name.data} takes no tensors: tinyattn-quantize reads "
            "a float tensor-level model"
        )
    try:
        samples = load_calibration(args.calib, function)[: args.calib_samples]
    except QuantizeError as error:
        raise DriverError(f"{args.calib}: {error}") from None
    except OSError as error:
        raise DriverError(f"{args.calib}: {error.strerror or str(error)}") from None
    per_channel = not args.per_tensor
    try:
        quantized = quantize(module, samples, per_channel=per_channel)
    except QuantizeError as error:
        raise DriverError(f"{args.model}: {error}") from None
    errors = accuracy_loss(module, quantized, samples)
    text = io.StringIO()
    Printer(stream=text).print_op(quantized)
    text.write("\n")
    to_stdout = args.output in (None, "-")
    files = {} if to_stdout else {args.output: text.getvalue()}
    if args.report:
        files[args.report] = _report(quantized, errors, len(samples), per_channel)
    _write(files)
    if to_stdout:
        sys.stdout.write(text.getvalue())
    print(f"{PROG}: int8 against f32 on {len(samples)} calibration samples:", file=sys.stderr)
    for index, error in enumerate(errors):
        print(_summary(error, index), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("model", help="the float model: an ONNX file, or tinyattn IR (.mlir)")
    parser.add_argument(
        "--calib", required=True, help="the calibration inputs: an .npz of [N, *shape] arrays"
    )
    parser.add_argument(
        "--calib-samples",
        type=count(1),
        help="calibrate on the first N samples only (default: all)",
    )
    parser.add_argument("-o", "--output", help="write the int8 module here instead of stdout")
    parser.add_argument(
        "--per-tensor",
        action="store_true",
        help="one scale per weight tensor instead of one per output channel",
    )
    parser.add_argument("--report", help="also write the accuracy loss and the scales as JSON")
    args = parser.parse_args(argv)
    return run_main(PROG, lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
