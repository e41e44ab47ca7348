"""tinyattn's Python API: compile a model for a target, or compile and run it under emulation
against the reference.

    from tinyattn.api import compile, run
    report = run("models/ecg.onnx", target="cortex-m4")
    print(report.format())            # or report.as_dict()
    compile("models/eeg.onnx", target="gap9", out_dir="build/eeg-gap9",
            options=LowerOptions(fuse_weights="always"))
"""

from tinyattn.driver.lower import LowerOptions
from tinyattn.driver.run import CompileResult, RunReport
from tinyattn.driver.run import compile_model as compile  # noqa: A001
from tinyattn.driver.run import run_model as run

__all__ = ["compile", "run", "CompileResult", "LowerOptions", "RunReport"]
