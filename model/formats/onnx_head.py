"""The linear head after the last recurrent layer of an ONNX graph: a MatMul by a constant (H, V), perhaps
followed by an Add of a constant bias, or a Gemm (``alpha * A @ B' + beta * C``, B' = B or B.T with
transB), read through data-moving ops from the layer's Y (every step) or Y_h (the final state only)."""

from __future__ import annotations

import numpy as np

from .common import FormatError, as_float
from .onnx_graph import MOVES, ONNX_DOMAINS, Graph


def read_head(g: Graph, last: int, H: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """The linear head (W (H, V), b (V,), applied to the final state only?) after the last layer, if any."""
    outs = g.nodes[last].output
    found = [(*h, k == 1) for k in (0, 1) if len(outs) > k and outs[k] for h in _heads_from(g, outs[k], H)]
    if len(found) > 1:
        raise FormatError(f"{g.name}: the last recurrent layer feeds {len(found)} linear heads; gatescope reads one")
    return found[0] if found else None


def _heads_from(g: Graph, name: str, H: int, seen: set[int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Linear heads reading ``name``, looking through data-moving ops."""
    heads = []
    seen = set() if seen is None else seen
    for j in g.consumers.get(name, []):
        node = g.nodes[j]
        if node.domain not in ONNX_DOMAINS or node.input[0] != name or j in seen:
            continue
        seen.add(j)
        if node.op_type in MOVES:
            heads += _heads_from(g, node.output[0], H, seen)
            continue
        read = {"MatMul": _matmul, "Gemm": _gemm}.get(node.op_type)
        found = read(g, j) if read else None
        if found is not None:
            heads.append(_head_weights(g, j, H, *found))
    return heads


#: A head's weight before its checks: W (H, V), its bias or None, and the bias's tensor name.
RawHead = tuple[np.ndarray, np.ndarray | None, str]


def _matmul(g: Graph, j: int) -> RawHead | None:
    """A MatMul by a constant (H, V), and the constant of the one Add after it, if any; None when W is computed."""
    node = g.nodes[j]
    W = g.const(node.input[1])
    if W is None:
        return None
    users = g.consumers.get(node.output[0], [])
    if len(users) != 1 or g.nodes[users[0]].op_type != "Add":
        return W, None, ""
    add = g.nodes[users[0]]
    other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
    b = g.const(other)
    if b is None:
        where = f"{g.name}: the head {g.label(j)}"
        raise FormatError(f"{where} is followed by an Add of a computed value; gatescope reads a constant bias")
    return W, b, other


def _gemm(g: Graph, j: int) -> RawHead | None:
    """A Gemm's alpha*B (transposed with transB) and beta*C; None when B is computed or A transposed."""
    node, a = g.nodes[j], g.attrs(j)
    B = g.const(node.input[1])
    if B is None or a.get("transA", 0):
        return None
    W = (B.T if a.get("transB", 0) else B) * a.get("alpha", 1.0)
    bias_name = node.input[2] if len(node.input) > 2 else ""
    if not bias_name:
        return W, None, ""
    b = g.const(bias_name)
    if b is None:
        raise FormatError(f"{g.name}: the head {g.label(j)} adds a computed C; gatescope reads a constant bias")
    return W, b * a.get("beta", 1.0), bias_name


def _head_weights(
    g: Graph, j: int, H: int, W: np.ndarray, b: np.ndarray | None, bias_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """The head's W (H, V) and b (V,) as float32, checked; a scalar bias is broadcast, no bias is zeros."""
    where = f"{g.name}: the head {g.label(j)}"
    W = as_float(f"{g.nodes[j].input[1]} (the head's weight)", W, g.name)
    if W.ndim != 2 or W.shape[0] != H:
        raise FormatError(f"{where} has a weight of shape {W.shape}, expected ({H}, V)")
    V = W.shape[1]
    b = np.zeros(V, np.float32) if b is None else as_float(f"{bias_name} (the head's bias)", b, g.name)
    if b.size == 1:
        b = np.full(V, b.item(), np.float32)
    if b.size != V:
        raise FormatError(f"{where} has a bias of shape {b.shape}, expected ({V},)")
    return np.ascontiguousarray(W), b.reshape(V)
