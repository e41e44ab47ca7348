"""tinyattn's Python API: compile a model for a target, or compile and run it under emulation
against the reference.

    from tinyattn.api import compile, run
    report = run("models/ecg.onnx", target="cortex-m4")
    print(report.format())            # or report.as_dict()
    compile("models/eeg.onnx", target="gap9", out_dir="build/eeg-gap9",
            options=LowerOptions(fuse_weights="always"))
"""

from tinyattn.lowering.driver import CompileResult, RunReport
from tinyattn.lowering.driver import compile_model as compile  # noqa: A001
from tinyattn.lowering.driver import run_model as run
from tinyattn.lowering.lower import LowerOptions

__all__ = ["compile", "run", "CompileResult", "LowerOptions", "RunReport"]
