"""The Python API: tinyattn.api.compile / tinyattn.api.run, as a notebook would call them."""

from tinyattn.api import compile, run
from tinyattn.driver.run import RunReport


def test_run_matches_and_reports(tmp_path):
    report = run("models/ecg.onnx", target="cortex-m4", work_dir=tmp_path / "work")
    assert isinstance(report, RunReport) and report.match
    fields = report.as_dict()
    assert fields["instructions"] > fields["macs"] > 0
    assert fields["activation_peak_bytes"] > 0 and fields["target"] == "cortex-m4"


def test_compile_writes_the_c_api(tmp_path):
    result = compile("models/ecg.onnx", target="gap9", out_dir=tmp_path / "ecg")
    header = (tmp_path / "ecg" / "model.h").read_text()
    assert "void tinyattn_model(" in header
    assert result.report["macs"] == 274_640
