"""Write the ONNX files `diagnostics.test` feeds to tinyattn-import into the directory given on
the command line: one model per diagnostic, plus a corrupt file."""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEQ, EMBED = 4, 8


def model(nodes, inputs, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(value, name) for name, value in initializers],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    x = ("x", [1, SEQ, EMBED])
    conv = model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="/blocks.0/Conv_3", dilations=[2])],
        [x],
        [("w", np.ones((SEQ, SEQ, 3), np.float32))],
    )
    # An unnamed node: the diagnostic names it by its output.
    matmul = model(
        [helper.make_node("MatMul", ["x", "y"], ["scores"])], [("x", [1, EMBED]), ("y", [EMBED, SEQ])]
    )
    scalar = model([helper.make_node("Relu", ["x"], ["y"], name="/Relu")], [("x", [])])
    for name, proto in (("conv", conv), ("matmul", matmul), ("scalar", scalar)):
        onnx.save(proto, out / f"{name}.onnx")
    (out / "corrupt.onnx").write_bytes(conv.SerializeToString()[:40] + b"\xff\xff\xff\xff")


if __name__ == "__main__":
    main()
