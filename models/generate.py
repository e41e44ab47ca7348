"""Generate the reference ONNX encoder models (eeg, ecg, radar, cct) used to exercise the importer.

The graphs follow the node pattern PyTorch's TorchScript ONNX exporter emits for a hand-written
post-norm transformer encoder, with deterministic random weights. Each model uses
a different mix of the pattern variants seen in real exports, so the importer is tested on all
of them without needing torch; `cct` puts a convolutional tokenizer in front of the encoder.
Run `python models/generate.py [--out-dir DIR] [--check] [--calib]`.
"""

import argparse
import math
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OPSET = 17
IR_VERSION = 8  # the IR that shipped with opset 17, so older runtimes load the files


@dataclass(frozen=True)
class Variant:
    """Which of the equivalent exporter patterns a model uses."""

    k_transpose_twice: bool  # K^T as Transpose(0,2,1,3) + Transpose(0,1,3,2), else one (0,2,3,1)
    scale: Literal["div_scores", "mul_scores", "mul_q"]
    decomposed_norm: bool  # ReduceMean/Sub/Pow/... instead of LayerNormalization
    activation: Literal["gelu", "relu"]


@dataclass(frozen=True)
class ConvTokenizer:
    """A compact convolutional transformer's tokenizer on a [1, C, H, W] image: Conv (stride 1,
    same padding, bias) + Relu + MaxPool (stride 2), flattened to H'·W' tokens of E channels,
    plus a learned positional embedding."""

    channels: int  # C
    height: int  # H
    width: int  # W
    kernel: int = 3  # of both the Conv and the MaxPool

    @property
    def tokens(self) -> int:
        """H'·W', the pooled feature map's size: each side (n + 2·(k // 2) - k) // 2 + 1."""
        pad = self.kernel // 2
        return math.prod((n + 2 * pad - self.kernel) // 2 + 1 for n in (self.height, self.width))


@dataclass(frozen=True)
class Spec:
    name: str
    seq: int  # S
    embed: int  # E
    head_dim: int  # P
    heads: int  # H
    blocks: int
    hidden: int  # FFN hidden width
    classes: int
    seed: int
    variant: Variant
    tokenizer: ConvTokenizer | None = None  # None: the input is already [1, S, E] tokens

    def __post_init__(self):
        if self.tokenizer is not None and self.tokenizer.tokens != self.seq:
            raise ValueError(f"{self.name}: the tokenizer makes {self.tokenizer.tokens} tokens")

    @property
    def input_shape(self) -> tuple[int, ...]:
        if self.tokenizer is None:
            return (1, self.seq, self.embed)
        return (1, self.tokenizer.channels, self.tokenizer.height, self.tokenizer.width)


SPECS = [
    Spec("eeg", seq=81, embed=32, head_dim=32, heads=8, blocks=2, hidden=64, classes=2, seed=1,
         variant=Variant(k_transpose_twice=False, scale="div_scores",
                         decomposed_norm=False, activation="gelu")),
    Spec("ecg", seq=66, embed=16, head_dim=2, heads=8, blocks=1, hidden=32, classes=5, seed=2,
         variant=Variant(k_transpose_twice=True, scale="mul_scores",
                         decomposed_norm=True, activation="gelu")),
    Spec("radar", seq=32, embed=32, head_dim=8, heads=4, blocks=2, hidden=64, classes=11, seed=3,
         variant=Variant(k_transpose_twice=False, scale="mul_q",
                         decomposed_norm=False, activation="relu")),
    Spec("cct", seq=64, embed=16, head_dim=8, heads=2, blocks=1, hidden=32, classes=10, seed=4,
         variant=Variant(k_transpose_twice=False, scale="mul_q",
                         decomposed_norm=False, activation="relu"),
         tokenizer=ConvTokenizer(channels=3, height=16, width=16)),
]  # fmt: skip


class GraphBuilder:
    """Collects nodes and initializers under the names the PyTorch exporter would give them.

    Modules are addressed by their PyTorch path (`blocks.0.attn.q_proj`); nodes become
    `/blocks.0/attn/q_proj/MatMul`, with outputs `<node>_output_0`, numbered `_1`, `_2`, ...
    per (module, op) like the exporter does.
    """

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._counts: Counter[tuple[str, str]] = Counter()

    def _node_name(self, module: str, op_type: str) -> str:
        index = self._counts[module, op_type]
        self._counts[module, op_type] += 1
        scope = "/" + re.sub(r"\.(?!\d)", "/", module) + "/" if module else "/"
        return f"{scope}{op_type}" + (f"_{index}" if index else "")

    def op(self, module: str, op_type: str, *inputs: str, output: str = "", **attrs) -> str:
        name = self._node_name(module, op_type)
        output = output or f"{name}_output_0"
        self.nodes.append(helper.make_node(op_type, inputs, [output], name=name, **attrs))
        return output

    def const(self, module: str, value, dtype=np.float32) -> str:
        """A folded constant (reshape shape, scalar), named like an exporter Constant output."""
        name = f"{self._node_name(module, 'Constant')}_output_0"
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype), name))
        return name

    def param(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name


def linear(b: GraphBuilder, module: str, x: str, n_in: int, n_out: int, bias_first=False) -> str:
    """nn.Linear on a 3-D input: MatMul with the pre-transposed weight [in, out], then Add."""
    w = b.param(f"{module}.weight", b.rng.normal(0, 1 / math.sqrt(n_in), (n_in, n_out)))
    bias = b.param(f"{module}.bias", b.rng.uniform(-0.1, 0.1, n_out))
    y = b.op(module, "MatMul", x, w)
    return b.op(module, "Add", *((bias, y) if bias_first else (y, bias)))


def layer_norm(b: GraphBuilder, module: str, x: str, dim: int, decomposed: bool) -> str:
    """nn.LayerNorm over the last axis, as the opset-17 op or the older exporter's decomposition."""
    gamma = b.param(f"{module}.weight", 1 + 0.1 * b.rng.standard_normal(dim))
    beta = b.param(f"{module}.bias", b.rng.uniform(-0.1, 0.1, dim))
    if not decomposed:
        return b.op(module, "LayerNormalization", x, gamma, beta, axis=-1, epsilon=1e-5)
    centered = b.op(module, "Sub", x, b.op(module, "ReduceMean", x, axes=[-1], keepdims=1))
    square = b.op(module, "Pow", centered, b.const(module, 2.0))
    var = b.op(module, "ReduceMean", square, axes=[-1], keepdims=1)
    std = b.op(module, "Sqrt", b.op(module, "Add", var, b.const(module, 1e-5)))
    normed = b.op(module, "Div", centered, std)
    return b.op(module, "Add", b.op(module, "Mul", normed, gamma), beta)


def gelu(b: GraphBuilder, module: str, x: str) -> str:
    """Exact (erf) GELU as exported: x * (erf(x / sqrt 2) + 1) * 0.5."""
    erf = b.op(module, "Erf", b.op(module, "Div", x, b.const(module, 1.4142135)))
    one_plus = b.op(module, "Add", erf, b.const(module, 1.0))
    return b.op(module, "Mul", b.op(module, "Mul", x, one_plus), b.const(module, 0.5))


def encoder_block(b: GraphBuilder, module: str, x: str, spec: Spec) -> str:
    """One post-norm encoder layer (nn.TransformerEncoderLayer, norm_first=False) on [1, S, E]."""
    s, e, p, h, var = spec.seq, spec.embed, spec.head_dim, spec.heads, spec.variant
    attn = f"{module}.attn"
    q = linear(b, f"{attn}.q_proj", x, e, h * p)
    k = linear(b, f"{attn}.k_proj", x, e, h * p, bias_first=True)
    v = linear(b, f"{attn}.v_proj", x, e, h * p)

    def heads(t: str, perm: list[int]) -> str:
        t = b.op(attn, "Reshape", t, b.const(attn, [1, s, h, p], np.int64))
        return b.op(attn, "Transpose", t, perm=perm)

    q = heads(q, [0, 2, 1, 3])
    if var.k_transpose_twice:
        k_t = b.op(attn, "Transpose", heads(k, [0, 2, 1, 3]), perm=[0, 1, 3, 2])
    else:
        k_t = heads(k, [0, 2, 3, 1])
    v = heads(v, [0, 2, 1, 3])

    if var.scale == "mul_q":
        q = b.op(attn, "Mul", q, b.const(attn, 1 / math.sqrt(p)))
    scores = b.op(attn, "MatMul", q, k_t)
    if var.scale == "div_scores":
        scores = b.op(attn, "Div", scores, b.const(attn, math.sqrt(p)))
    elif var.scale == "mul_scores":
        scores = b.op(attn, "Mul", scores, b.const(attn, 1 / math.sqrt(p)))
    probs = b.op(attn, "Softmax", scores, axis=-1)

    ctx = b.op(attn, "Transpose", b.op(attn, "MatMul", probs, v), perm=[0, 2, 1, 3])
    ctx = b.op(attn, "Reshape", ctx, b.const(attn, [1, s, h * p], np.int64))
    out = linear(b, f"{attn}.out_proj", ctx, h * p, e)
    x = layer_norm(b, f"{module}.norm1", b.op(module, "Add", x, out), e, var.decomposed_norm)

    y = linear(b, f"{module}.ffn.fc1", x, e, spec.hidden)
    if var.activation == "gelu":
        y = gelu(b, f"{module}.ffn.act", y)
    else:
        y = b.op(f"{module}.ffn.act", "Relu", y)
    y = linear(b, f"{module}.ffn.fc2", y, spec.hidden, e)
    return layer_norm(b, f"{module}.norm2", b.op(module, "Add", x, y), e, var.decomposed_norm)


def conv_tokenizer(b: GraphBuilder, x: str, spec: Spec) -> str:
    """The `tokenizer` module on the [1, C, H, W] image, `pool(relu(conv(x))).flatten(2)
    .transpose(1, 2)`, plus the positional embedding: [1, S, E] tokens."""
    tok, e = spec.tokenizer, spec.embed
    k, pad = tok.kernel, [tok.kernel // 2] * 4
    std = 1 / math.sqrt(tok.channels * k * k)  # 1/sqrt(fan_in)
    w = b.param("tokenizer.conv.weight", b.rng.normal(0, std, (e, tok.channels, k, k)))
    bias = b.param("tokenizer.conv.bias", b.rng.uniform(-0.1, 0.1, e))
    x = b.op("tokenizer.conv", "Conv", x, w, bias, kernel_shape=[k, k], strides=[1, 1], pads=pad)
    x = b.op("tokenizer.act", "Relu", x)
    x = b.op("tokenizer.pool", "MaxPool", x, kernel_shape=[k, k], strides=[2, 2], pads=pad)
    x = b.op("tokenizer", "Reshape", x, b.const("tokenizer", [1, e, spec.seq], np.int64))
    x = b.op("tokenizer", "Transpose", x, perm=[0, 2, 1])
    pos = b.param("positional_embedding", b.rng.normal(0, 0.1, (1, spec.seq, e)))
    return b.op("", "Add", x, pos)


def build(spec: Spec) -> onnx.ModelProto:
    b = GraphBuilder(spec.seed)
    x = "x" if spec.tokenizer is None else conv_tokenizer(b, "x", spec)
    for i in range(spec.blocks):
        x = encoder_block(b, f"blocks.{i}", x, spec)
    pooled = b.op("", "ReduceMean", x, axes=[1], keepdims=0)  # mean over the sequence
    std = 1 / math.sqrt(spec.embed)
    w = b.param("head.weight", b.rng.normal(0, std, (spec.classes, spec.embed)))
    bias = b.param("head.bias", b.rng.uniform(-0.1, 0.1, spec.classes))
    b.op("head", "Gemm", pooled, w, bias, output="logits", transB=1)

    graph = helper.make_graph(
        b.nodes,
        f"tinyattn_{spec.name}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(spec.input_shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, spec.classes])],
        b.initializers,
        doc_string=(
            f"{spec.name}: S={spec.seq} E={spec.embed} P={spec.head_dim} H={spec.heads} "
            f"blocks={spec.blocks} ffn_hidden={spec.hidden} classes={spec.classes}; {spec.variant}"
            + (f"; {spec.tokenizer}" if spec.tokenizer else "")
        ),
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="tinyattn.models.generate",
    )
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


CALIBRATION_SAMPLES = 32


def spec_named(name: str) -> Spec:
    return next(spec for spec in SPECS if spec.name == name)


def calibration_set(spec: Spec, count: int = CALIBRATION_SAMPLES) -> dict[str, np.ndarray]:
    """Deterministic calibration inputs of `spec`'s model, keyed by input name: `count`
    standard-normal samples of `x`, [count, *input shape] float32 ([count, 1, S, E], or
    [count, 1, C, H, W] for an image model; the distribution `check` runs the models on), from a
    random stream of their own, so a smaller set is a prefix of a larger one.
    This is what `tinyattn-quantize --calib` reads, saved as an .npz."""
    rng = np.random.default_rng([spec.seed, 1])
    return {"x": rng.standard_normal((count, *spec.input_shape)).astype(np.float32)}


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez`, but byte-for-byte reproducible: every member gets the same timestamp."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy"), "w") as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array))


def param_count(model: onnx.ModelProto) -> int:
    """Trainable parameters: initializers named like module attributes, not folded constants."""
    return sum(int(np.prod(t.dims)) for t in model.graph.initializer if not t.name.startswith("/"))


def check(model_path: Path) -> None:
    """Run a model on random input; fail on non-finite logits or saturated attention."""
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    probs = {n.output[0] for n in model.graph.node if n.op_type == "Softmax"}
    model.graph.output.extend(vi for vi in model.graph.value_info if vi.name in probs)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    logits, *attention = ReferenceEvaluator(model).run(None, {"x": x})
    peak = float(np.mean([a.max(axis=-1).mean() for a in attention]))
    if not np.isfinite(logits).all() or peak >= 0.9:
        raise SystemExit(f"{model_path.name}: logits {logits}, mean max attention {peak:.3f}")
    print(f"{model_path.name}: ok, logits {logits.ravel().round(3)}, mean max attention {peak:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--check", action="store_true", help="also validate and run each model")
    parser.add_argument(
        "--calib",
        action="store_true",
        help="also write each model's calibration set, NAME.calib.npz",
    )
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for spec in SPECS:
        path = args.out_dir / f"{spec.name}.onnx"
        model = build(spec)
        onnx.save(model, path)
        print(f"wrote {path} ({param_count(model)} params, {path.stat().st_size} bytes)")
        if args.check:
            check(path)
        if args.calib:
            calib = args.out_dir / f"{spec.name}.calib.npz"
            save_npz(calib, calibration_set(spec))
            print(f"wrote {calib} ({CALIBRATION_SAMPLES} samples)")


if __name__ == "__main__":
    main()
