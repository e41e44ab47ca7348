"""Recognise the multi-head self-attention subgraph of an exported encoder as one `tinyattn.mhsa`.

The exporter spreads attention over ~20 nodes: three projections of the same input, a head split
(`Reshape([1, S, H, P])` + `Transpose`), `MatMul(q, k^T)`, a 1/sqrt(P) scaling somewhere before
the `Softmax`, `MatMul(probs, v)`, the head merge (`Transpose` + `Reshape([1, S, H*P])`) and the
output projection. `match_attention` returns what it found (weights still in ONNX layout), so the
int8 path can reuse it and convert differently; `attention_pattern` emits the f32 op.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from xdsl.ir import SSAValue

from tinyattn.dialects import tinyattn as ta
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


@dataclass(frozen=True)
class HeadSplit:
    """A projection split into `heads` heads of `head_dim`, times the scalar `scale` found
    between the split and its use."""

    projection: Linear
    heads: int
    head_dim: int
    scale: float
    nodes: tuple[Node, ...]

    def head_major(self) -> tuple[Constant, Constant]:
        """Weight [E, H*P] -> [H, E, P] and bias [H*P] -> [H, P] (zeros without a bias)."""
        weight = self.projection.weight
        width = weight.array.shape[0]
        head_weight = weight.array.reshape(width, self.heads, self.head_dim).transpose(1, 0, 2)
        bias = self.projection.bias
        if bias is None:
            head_bias = Constant(np.zeros((self.heads, self.head_dim), np.float32))
        else:
            head_bias = Constant(bias.array.reshape(self.heads, self.head_dim), bias.name)
        return Constant(head_weight, weight.name), head_bias


@dataclass(frozen=True)
class Attention:
    """A matched self-attention of input `x`; `scale` multiplies the scores."""

    x: str
    q: HeadSplit
    k: HeadSplit
    v: HeadSplit
    out: Linear
    scale: float
    nodes: tuple[Node, ...]

    def output_weights(self) -> tuple[Constant, Constant]:
        """Wo [H*P, E] -> [H, P, E] and bo [E] (zeros without a bias)."""
        weight = self.out.weight
        width = weight.array.shape[1]
        head_weight = Constant(
            weight.array.reshape(self.v.heads, self.v.head_dim, width), weight.name
        )
        bias = self.out.bias
        return head_weight, Constant(np.zeros(width, np.float32)) if bias is None else bias

    def emit(self, emitter: Emitter) -> SSAValue:
        def emitted(pair: tuple[Constant, Constant]) -> tuple[SSAValue, SSAValue]:
            weight, bias = pair
            return emitter.constant(weight), emitter.constant(bias)

        mhsa = ta.MHSAOp(
            emitter.value(self.x),
            emitted(self.q.head_major()),
            emitted(self.k.head_major()),
            emitted(self.v.head_major()),
            emitted(self.output_weights()),
            num_heads=self.q.heads,
            scale=self.scale,
        )
        return emitter.op(mhsa)


def _walk_back(
    graph: OnnxGraph, name: str, scalable: bool
) -> tuple[str, list[int], float, list[Node]]:
    """Step back from `name` over rank-4 `Transpose`s and, if `scalable`, scalar `Mul`/`Div`s.
    Returns the value where the walk stopped, the composed permutation (axis i of `name` is
    axis perm[i] of that value), the product of the scale factors and the nodes passed, last
    first."""
    perm, scale, nodes = list(_NO_TRANSPOSE), 1.0, []
    while (node := graph.producer(name)) is not None:
        if node.op_type == "Transpose":
            node_perm = node.attr("perm", [3, 2, 1, 0])
            if len(node_perm) != 4:
                raise Mismatch(f"{node.label()} does not transpose a rank-4 tensor")
            perm = [node_perm[axis] for axis in perm]
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
    projected = split.inputs[0]
    target = graph.constant(split.inputs[1])
    if target is None:
        raise Mismatch(f"the shape of {split.label()} is not a constant")
    shape = graph.shape(projected)
    heads_shape = resolve_reshape(shape, target.tolist(), bool(split.attr("allowzero", 0)))
    if len(shape) != 3 or len(heads_shape) != 4 or heads_shape[:2] != shape[:2] or shape[0] != 1:
        raise Mismatch(f"{split.label()} does not split [1, S, H*P] into [1, S, H, P]")
    projection = match_linear(graph, graph.producer_of(projected))
    nodes = (*projection.nodes, split, *reversed(nodes))
    return HeadSplit(projection, heads_shape[2], heads_shape[3], scale, nodes)


def match_attention(graph: OnnxGraph, root: Node) -> Attention:
    """The self-attention whose output projection ends at `root`."""
    out = match_linear(graph, root)
    merge = graph.producer_of(out.input, "Reshape")
    context_name, perm, _, merge_nodes = _walk_back(graph, merge.inputs[0], scalable=False)
    if perm != _HEADS_FIRST:
        raise Mismatch(f"heads of '{context_name}' are merged as {perm}, expected {_HEADS_FIRST}")
    context = graph.producer_of(context_name, "MatMul")
    probabilities, v_heads = context.inputs
    softmax = graph.producer_of(probabilities, "Softmax")
    if not softmax_is_over_last_axis(graph, softmax):
        raise Mismatch(f"{softmax.label()} is not over the last axis")
    scores_name, perm, score_scale, score_nodes = _walk_back(
        graph, softmax.inputs[0], scalable=True
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
        softmax,
        context,
        *reversed(merge_nodes),
        merge,
        *out.nodes,
    )
    return Attention(x, q, k, v, out, q.scale * k.scale * score_scale, nodes)


def attention_pattern(graph: OnnxGraph, root: Node) -> Match:
    attention = match_attention(graph, root)
    return Match(root, attention.nodes, attention.emit)
