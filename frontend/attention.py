"""Recognise the multi-head self-attention subgraph of an exported encoder as one `tinyattn.mhsa`.

The exporter spreads attention over ~20 nodes: three projections of the same input, a head split
(`Reshape([1, S, H, P])` + `Transpose`), `MatMul(q, k^T)`, a 1/sqrt(P) scaling somewhere before
the `Softmax`, `MatMul(probs, v)`, the head merge (`Transpose` + `Reshape([1, S, H*P])`) and the
output projection. An integerised graph (QuantLib/Deeploy) has the same shape with a
`RequantShift` after each stage instead of the scaling, and an `iSoftmax` or no normalization at
all. `match_attention` returns what it found (weights still in ONNX layout, the RequantShifts of
each stage); `attention_pattern` emits the f32 op, `integer_attention_pattern` the int8 one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from xdsl.dialects.builtin import StringAttr, TensorType
from xdsl.ir import Attribute, SSAValue

from tinyattn.dialects import tinyattn as ta
from tinyattn.frontend.integer import (
    IntegerGraph,
    integer_linear,
    isoftmax_attr,
    malformed,
    requant_shift,
)
from tinyattn.frontend.onnx_graph import Mismatch, Node, OnnxGraph, resolve_reshape
from tinyattn.frontend.patterns import (
    Constant,
    Emitter,
    Linear,
    Match,
    match_linear,
    scale_factor,
    softmax_is_over_last_axis,
    squeeze_batch,
)

_NO_TRANSPOSE = [0, 1, 2, 3]
# [1, S, H, P] -> [1, H, S, P]: queries, values and the head merge.
_HEADS_FIRST = [0, 2, 1, 3]
# [1, S, H, P] -> [1, H, P, S]: keys, transposed for the score MatMul.
_KEYS_TRANSPOSED = [0, 2, 3, 1]
_NORMALIZATIONS = ("Softmax", "iSoftmax")
_REQUANT = "RequantShift"


def _is_requant(node: Node) -> bool:
    """QuantLib's RequantShift (only integerised graphs have one)."""
    return node.op_type == _REQUANT and node.is_quantlib


def _requants(nodes) -> tuple[Node, ...]:
    return tuple(node for node in nodes if _is_requant(node))


@dataclass(frozen=True)
class HeadSplit:
    """A projection split into `heads` heads of `head_dim`, times the scalar `scale` found
    between the split and its use."""

    projection: Linear
    heads: int
    head_dim: int
    scale: float
    nodes: tuple[Node, ...]

    @property
    def requants(self) -> tuple[Node, ...]:
        return _requants(self.nodes)

    def head_major(self) -> tuple[Constant, Constant]:
        """Weight [E, H*P] -> [H, E, P] and bias [H*P] -> [H, P] (zeros without a bias)."""
        weight = self.projection.weight
        width = weight.array.shape[0]
        head_weight = weight.array.reshape(width, self.heads, self.head_dim).transpose(1, 0, 2)
        bias = self.projection.bias
        if bias is None:
            head_bias = self.projection.zero_bias((self.heads, self.head_dim))
        else:
            head_bias = Constant(
                bias.array.reshape(self.heads, self.head_dim), bias.name, bias.element_type
            )
        return Constant(head_weight, weight.name, weight.element_type), head_bias

    def integer(self, graph: IntegerGraph) -> HeadSplit:
        """This split with the integer form of its projection."""
        return replace(self, projection=integer_linear(graph, self.projection))


@dataclass(frozen=True)
class Attention:
    """A matched self-attention of input `x`; `scale` multiplies the scores, `normalization` is
    the Softmax or iSoftmax node (None: the scores multiply V directly) and `requants` holds the
    RequantShifts found after the score, probability, context and output stages."""

    x: str
    q: HeadSplit
    k: HeadSplit
    v: HeadSplit
    out: Linear
    scale: float
    normalization: Node | None
    requants: Mapping[str, tuple[Node, ...]]
    nodes: tuple[Node, ...]

    def output_weights(self) -> tuple[Constant, Constant]:
        """Wo [H*P, E] -> [H, P, E] and bo [E] (zeros without a bias)."""
        weight = self.out.weight
        width = weight.array.shape[1]
        head_weight = Constant(
            weight.array.reshape(self.v.heads, self.v.head_dim, width),
            weight.name,
            weight.element_type,
        )
        bias = self.out.bias
        return head_weight, self.out.zero_bias((width,)) if bias is None else bias

    def emit(
        self,
        emitter: Emitter,
        result_element: Attribute | None = None,
        properties: Mapping[str, Attribute] = {},
    ) -> SSAValue:
        """The mhsa op: f32 with `scale`, or int8 with its requantizations in `properties` and
        the element type of its result."""

        def emitted(pair: tuple[Constant, Constant]) -> tuple[SSAValue, SSAValue]:
            weight, bias = pair
            return emitter.constant(weight), emitter.constant(bias)

        x = emitter.value(self.x)
        integer = result_element is not None
        mhsa = ta.MHSAOp(
            x,
            emitted(self.q.head_major()),
            emitted(self.k.head_major()),
            emitted(self.v.head_major()),
            emitted(self.output_weights()),
            num_heads=self.q.heads,
            scale=None if integer else self.scale,
            result_type=TensorType(result_element, x.type.get_shape()) if integer else None,
            properties=properties,
        )
        return emitter.op(mhsa)


def _walk_back(
    graph: OnnxGraph, name: str, scalable: bool
) -> tuple[str, list[int], float, list[Node]]:
    """Step back from `name` over rank-4 `Transpose`s, `RequantShift`s (only integer graphs
    have them) and, if `scalable`, scalar `Mul`/`Div`s. Returns the value where the walk
    stopped, the composed permutation (axis i of `name` is axis perm[i] of that value), the
    product of the scale factors and the nodes passed, last first."""
    perm, scale, nodes = list(_NO_TRANSPOSE), 1.0, []
    while (node := graph.producer(name)) is not None:
        if node.op_type == "Transpose":
            node_perm = node.attr("perm", [3, 2, 1, 0])
            if len(node_perm) != 4:
                raise Mismatch(f"{node.label()} does not transpose a rank-4 tensor")
            perm = [node_perm[axis] for axis in perm]
            name = node.inputs[0]
        elif _is_requant(node):
            name = node.inputs[0]
        elif scalable and (scaled := scale_factor(graph, node)) is not None:
            name, factor = scaled
            scale *= factor
        else:
            break
        nodes.append(node)
    return name, perm, scale, nodes


def _head_split(graph: OnnxGraph, name: str, expected_perm: list[int], scalable: bool):
    """The projection whose heads `name` is: `Reshape([1, S, H, P])`, then transposes
    composing to `expected_perm` (interleaved with scalings if `scalable`)."""
    name, perm, scale, nodes = _walk_back(graph, name, scalable)
    if perm != expected_perm:
        raise Mismatch(f"heads of '{name}' are permuted as {perm}, expected {expected_perm}")
    split = graph.producer_of(name, "Reshape")
    projected, _, _, requants = _walk_back(graph, split.inputs[0], scalable=False)
    target = graph.constant(split.inputs[1])
    if target is None:
        raise Mismatch(f"the shape of {split.label()} is not a constant")
    shape = graph.shape(projected)
    heads_shape = resolve_reshape(shape, target.tolist(), bool(split.attr("allowzero", 0)))
    if len(shape) != 3 or len(heads_shape) != 4 or heads_shape[:2] != shape[:2] or shape[0] != 1:
        raise Mismatch(f"{split.label()} does not split [1, S, H*P] into [1, S, H, P]")
    projection = plain_linear(graph, graph.producer_of(projected))
    nodes = (*projection.nodes, *reversed(requants), split, *reversed(nodes))
    return HeadSplit(projection, heads_shape[2], heads_shape[3], scale, nodes)


def plain_linear(graph: OnnxGraph, root: Node) -> Linear:
    """An attention's projection: `x @ W + b`, no Gemm alpha or matrix addend."""
    linear = match_linear(graph, root)
    if not linear.is_plain:
        raise Mismatch(f"{root.label()} scales or adds a matrix; an attention projection does not")
    return linear


def match_attention(graph: OnnxGraph, root: Node) -> Attention:
    """The self-attention whose output projection (or the RequantShift after it) ends at
    `root`."""
    out_requants = (root,) if _is_requant(root) else ()
    out = plain_linear(graph, graph.producer_of(root.inputs[0]) if out_requants else root)
    merge = graph.producer_of(out.input, "Reshape")
    context_name, perm, _, merge_nodes = _walk_back(graph, merge.inputs[0], scalable=False)
    if perm != _HEADS_FIRST:
        raise Mismatch(f"heads of '{context_name}' are merged as {perm}, expected {_HEADS_FIRST}")
    context = graph.producer_of(context_name, "MatMul")
    probabilities, v_heads = context.inputs
    probabilities, perm, _, probability_nodes = _walk_back(graph, probabilities, scalable=False)
    normalization = graph.producer(probabilities)
    if perm != _NO_TRANSPOSE:
        raise Mismatch(f"the attention probabilities '{probabilities}' are transposed")
    if normalization is None or normalization.op_type not in _NORMALIZATIONS:
        normalization, probability_nodes, probabilities = None, [], context.inputs[0]
    elif normalization.op_type == "Softmax" and not softmax_is_over_last_axis(graph, normalization):
        raise Mismatch(f"{normalization.label()} is not over the last axis")
    scores_name, perm, score_scale, score_nodes = _walk_back(
        graph, normalization.inputs[0] if normalization else probabilities, scalable=True
    )
    if perm != _NO_TRANSPOSE:
        raise Mismatch(f"the scores '{scores_name}' are transposed")
    scores = graph.producer_of(scores_name, "MatMul")
    q = _head_split(graph, scores.inputs[0], _HEADS_FIRST, scalable=True)
    k = _head_split(graph, scores.inputs[1], _KEYS_TRANSPOSED, scalable=True)
    v = _head_split(graph, v_heads, _HEADS_FIRST, scalable=False)
    x = q.projection.input
    if k.projection.input != x or v.projection.input != x:
        raise Mismatch("Q, K and V are not projections of the same input")
    if not (q.heads == k.heads == v.heads and q.head_dim == k.head_dim == v.head_dim):
        raise Mismatch("Q, K and V are split into different heads")
    seq = graph.shape(x)[1]
    if graph.shape(merge.outputs[0]) != (1, seq, v.heads * v.head_dim):
        raise Mismatch(f"{merge.label()} does not merge the heads into [1, S, H*P]")
    if len(squeeze_batch(graph.shape(x))) != 2:
        raise Mismatch(f"the attention input '{x}' is not [1, S, E]")
    nodes = (
        *q.nodes,
        *k.nodes,
        *v.nodes,
        scores,
        *reversed(score_nodes),
        *([normalization] if normalization else []),
        *reversed(probability_nodes),
        context,
        *reversed(merge_nodes),
        merge,
        *out.nodes,
        *out_requants,
    )
    requants = {
        "score": _requants(score_nodes),
        "probabilities": _requants(probability_nodes),
        "context": _requants(merge_nodes),
        "out": out_requants,
    }
    scale = q.scale * k.scale * score_scale
    return Attention(x, q, k, v, out, scale, normalization, requants, nodes)


def attention_pattern(graph: OnnxGraph, root: Node) -> Match:
    """Self-attention as PyTorch exports it (Q, K, V projections, head split, scaled scores,
    Softmax, context, head merge, output projection): one `tinyattn.mhsa`."""
    attention = match_attention(graph, root)
    if attention.normalization is None or attention.normalization.op_type != "Softmax":
        raise Mismatch("the attention has no Softmax")
    return Match(root, attention.nodes, attention.emit)


# The integer attention's stages, each narrowed by one RequantShift, and the mhsa property that
# states it. All but the output are signed int8 in tinyattn's integer attention.
_INTEGER_STAGES = {
    "q": "q_requant",
    "k": "k_requant",
    "v": "v_requant",
    "score": "score_requant",
    "context": "context_requant",
    "out": "out_requant",
}


def integer_attention_pattern(graph: IntegerGraph, root: Node) -> Match:
    """An integerised attention ending in the output projection's RequantShift: one int8
    `tinyattn.mhsa` with the requantization of every stage (and the iSoftmax, if any).

    Its score MatMul (of two activations) fits no other pattern, so once the attention's
    structure is recognised, what the integer mhsa cannot express is reported at once."""
    attention = match_attention(graph, root)
    normalization = attention.normalization
    if normalization is not None and normalization.op_type != "iSoftmax":
        raise malformed(normalization, "a float softmax in an integer attention")
    if attention.scale != 1.0:
        raise malformed(
            root,
            f"the attention's scores are scaled by {attention.scale:g}; an integer attention "
            "scales them in their RequantShift",
        )
    if attention.requants["probabilities"]:
        (node, *_) = attention.requants["probabilities"]
        raise malformed(node, "requantizes the attention probabilities after the iSoftmax")
    x_type = graph.activation_type(attention.x)
    if not ta.is_int8(x_type):
        raise malformed(root, f"the attention's input '{attention.x}' is {x_type}, not 8-bit")
    requants = {
        "q": attention.q.requants,
        "k": attention.k.requants,
        "v": attention.v.requants,
        **attention.requants,
    }
    properties: dict[str, Attribute] = {}
    for stage, name in _INTEGER_STAGES.items():
        if len(requants[stage]) != 1:
            raise malformed(
                root,
                f"the attention's {stage} stage has {len(requants[stage])} RequantShifts; "
                "an integer attention narrows each stage with one",
            )
        (node,) = requants[stage]
        requantization = requant_shift(graph, node)
        if stage != "out" and requantization.element_type != ta.i8:
            raise malformed(
                node,
                f"narrows the attention's {stage} stage to {requantization.element_type}; "
                "tinyattn's integer attention keeps it signed (i8)",
            )
        properties[name] = requantization.attr
    if normalization is None:
        properties["normalization"] = StringAttr(ta.NO_NORMALIZATION)
    else:
        properties["isoftmax"] = isoftmax_attr(normalization)
    integer = replace(
        attention,
        q=attention.q.integer(graph),
        k=attention.k.integer(graph),
        v=attention.v.integer(graph),
        out=integer_linear(graph, attention.out),
    )
    out_type = requantization.element_type  # the last stage's: the output's

    def emit(emitter: Emitter) -> SSAValue:
        return integer.emit(emitter, out_type, properties)

    return Match(root, integer.nodes, emit)
