"""ONNX: a graph of LSTM, GRU or RNN nodes, one per layer, with an optional embedding
(Gather on a constant table) before the first and an optional linear head (MatMul, Add
or Gemm, then perhaps Softmax) after the last.

Layout (ONNX operator docs: LSTM, GRU, RNN, opsets 7-22), for n directions (2 with
``direction="bidirectional"``, else 1) and G gates: ``W`` (n, G*H, D), ``R`` (n, G*H, H),
optional ``B`` (n, 2*G*H) = [Wb | Rb], the two biases adding; gate blocks i, o, f, c (LSTM),
z, r, h (GRU), one block (RNN); LSTM peepholes ``P`` (n, 3H) in the order i, o, f, with f
and i seeing c_prev and o the new c (gatescope's "peephole" cell). Direction 0 of a
bidirectional node is the forward one, direction 1 the backward one (gatescope's
``layers.<k>.reverse.*``); ``direction="reverse"`` is gatescope's reverse direction, its one
set of weights read from x_{T-1} to x_0. Y (T, n, B, H) holds both directions' h at each
step in time order, which a next layer reads as (T, B, n*H): PyTorch's layout. The GRU:

    z = σ(W_z x + R_z h + Wb_z + Rb_z)          r = σ(W_r x + R_r h + Wb_r + Rb_r)
    linear_before_reset=0   h~ = tanh(W_h x + R_h (r*h) + Rb_h + Wb_h)
    linear_before_reset=1   h~ = tanh(W_h x + r*(R_h h + Rb_h) + Wb_h)
    h = (1 - z)*h~ + z*h_prev

ONNX's z is the share of h_prev kept; gatescope's z is colah's, the share of h~ that
enters, i.e. ONNX's 1 - z. As σ(-a) = 1 - σ(a), the z rows of W, R and both biases are
negated. With linear_before_reset=0, Rb_h sits outside the reset, so b_h = Wb_h + Rb_h
(gatescope's reset_after=False); with 1 it is reset_after=True with bU_h = Rb_h.

Layers are recurrent nodes in a chain, each reading the previous one's Y through
data-moving ops only (Squeeze, Reshape, Transpose, ...). Weights must be constants
(initializers or Constant nodes) inside the file: onnx.load runs with
load_external_data=False, and no graph code is ever run. The importer refuses, with
a message, what gatescope's cells cannot run as written: non-default activations, clip,
input_forget=1, a non-zero constant initial state, layers of mixed types, sizes or
directions, weights computed from the input. ``layout`` (batch-major X)
and ``sequence_lens`` (padding) leave the weights as they are and are ignored. A head
the file applies to the final state (Y_h) only is applied at every step, and said so
in the spec's meta.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..network import Network
from .common import FormatError, as_float, assemble, flip_z, gate_weights, head_fields, stack
from .onnx_graph import ONNX_DOMAINS, Graph
from .onnx_head import read_head

RECURRENT = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
#: Gate blocks of W, R and B in ONNX's order, named as gatescope names them.
BLOCKS = {"LSTM": ("i", "o", "f", "c"), "GRU": ("z", "r", "h"), "RNN": ("h",)}
#: The default activations, the only ones gatescope's cells compute.
DIRECTIONS = {
    "forward": 1,
    "reverse": 1,
    "bidirectional": 2,
}  # ONNX's directions: how many weight sets (num_directions)
ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh"), "RNN": ("tanh",)}


def load(path: Path, vocab: dict[str, Any] | None = None) -> Network:
    """A Network from an .onnx file; ``vocab`` (from common.parse_vocab) makes it a text model."""
    try:
        import onnx
    except ImportError:
        raise FormatError(
            f"{path.name}: reading .onnx files needs the onnx package (pip install 'gatescope[onnx]')"
        ) from None
    try:
        m = onnx.load(str(path), format="protobuf", load_external_data=False)
    except Exception as e:  # protobuf raises DecodeError, and others on odd bytes
        raise FormatError(f"{path.name} is not a valid ONNX file ({_first_line(e)})") from None
    if m.ir_version == 0 or not m.HasField("graph") or not m.graph.node:
        raise FormatError(f"{path.name} is not a valid ONNX file (it holds no ONNX graph)")
    try:
        return _convert(m, path.name, vocab)
    except FormatError:
        raise
    except Exception as e:  # a corner of some graph this importer does not foresee: a message, never a traceback
        raise FormatError(f"{path.name}: cannot read this ONNX graph ({type(e).__name__}: {_first_line(e)})") from None


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:300]


@dataclass
class _Layer:
    params: dict[str, np.ndarray]  # gatescope's per-gate weights (cells.PARAMS), peepholes apart
    D: int
    H: int
    reset_after: bool  # gru: linear_before_reset=1
    P: list[np.ndarray | None]  # lstm: per direction (3, H) peepholes i, o, f, or None
    direction: str = "forward"  # ONNX's direction attribute, gatescope's Spec.direction


def _convert(m: Any, name: str, vocab: dict[str, Any] | None) -> Network:
    g = Graph(m, name)
    chain, op = _recurrent_nodes(g, name)
    layers = [_layer(g, j) for j in chain]
    H, reset_after, direction = _check_stack(g, chain, layers, name)
    peephole = any(P is not None and np.any(P) for layer in layers for P in layer.P)
    params = stack([layer.params | (_peepholes(layer.P, H) if peephole else {}) for layer in layers])
    D = layers[0].D
    embedding = _embedding(g, chain[0], D)
    head = read_head(g, chain[-1], H * len(layers[0].P))
    cell = "peephole" if peephole else RECURRENT[op]
    spec: dict[str, Any] = dict(cell=cell, input_size=D, hidden_size=H, num_layers=len(layers), reset_after=reset_after)
    if direction != "forward":
        spec["direction"] = direction
    source: dict[str, Any] = {"format": "onnx", "file": name}
    producer = f"{m.producer_name} {m.producer_version}".strip()
    if producer:
        source["producer"] = producer
    heads = head_fields({p.key: p.value for p in m.metadata_props}, name)
    if head is not None and head[2]:
        source["head"] = "the file applies its head to the final hidden state only; gatescope to every step"
        heads.setdefault("head_at", "last")  # only the last step's prediction is the file's answer
    return assemble(name, spec, params, source, vocab, embedding, head[:2] if head else None, heads=heads)


def _recurrent_nodes(g: Graph, name: str) -> tuple[list[int], str]:
    """The recurrent nodes in graph order, and their one op type."""
    chain = [j for j, n in enumerate(g.nodes) if n.op_type in RECURRENT and n.domain in ONNX_DOMAINS]
    if not chain:
        used = {n.op_type for n in g.nodes}
        loops = sorted(used & {"Loop", "Scan"})
        hint = f"; a recurrence written as a {' / '.join(loops)} is not supported" if loops else ""
        if not loops and used & {"Tanh", "Sigmoid"}:
            hint = (
                "; a recurrence unrolled into separate ops cannot be read (torch.onnx.export(dynamo=True) "
                "unrolls nn.RNN: export it with dynamo=False)"
            )
        raise FormatError(f"{name}: no LSTM, GRU or RNN node in the graph{hint}")
    ops = sorted({g.nodes[j].op_type for j in chain})
    if len(ops) > 1:
        raise FormatError(f"{name}: it mixes {' and '.join(ops)} layers; gatescope runs one cell type throughout")
    return chain, ops[0]


def _check_stack(g: Graph, chain: list[int], layers: list[_Layer], name: str) -> tuple[int, bool, str]:
    """The layers' one hidden size H, GRU form and direction, each layer checked to read the previous one's Y."""
    H, direction = layers[0].H, layers[0].direction
    for k, (j, layer) in enumerate(zip(chain, layers)):
        if layer.H != H:
            raise FormatError(
                f"{name}: {g.label(j)} (layer {k}) has hidden size {layer.H}, layer 0 has {H}; "
                "gatescope needs one hidden size throughout"
            )
        if layer.direction != direction:
            raise FormatError(
                f"{name}: {g.label(j)} (layer {k}) runs direction={layer.direction!r}, layer 0 runs "
                f"{direction!r}; gatescope runs every layer in one direction"
            )
        if k == 0:
            continue
        src, p = g.source(g.nodes[j].input[0])
        prev = chain[k - 1]
        if p != prev or src != g.nodes[prev].output[0]:
            came = g.label(p) if p is not None else f"{src!r}"
            raise FormatError(
                f"{name}: {g.label(j)} reads its input from {came}, not from the Y output of {g.label(prev)}; "
                "gatescope reads a plain stack of recurrent layers, each feeding the next"
            )
    reset_after = {layer.reset_after for layer in layers}
    if len(reset_after) > 1:
        raise FormatError(
            f"{name}: its GRU layers mix linear_before_reset=0 and 1; gatescope needs one form throughout"
        )
    return H, reset_after.pop(), direction


def _peepholes(Ps: list[np.ndarray | None], H: int) -> dict[str, np.ndarray]:
    """A layer's peephole weights p_i, p_o, p_f (H,) each, per direction (the backward one's under
    ``reverse.``): zeros for a layer without P in a peephole stack."""
    own: dict[str, np.ndarray] = {}
    for prefix, P in zip(("", "reverse."), Ps):
        p_i, p_o, p_f = P if P is not None else np.zeros((3, H), np.float32)
        own |= {f"{prefix}p_i": p_i, f"{prefix}p_o": p_o, f"{prefix}p_f": p_f}
    return own


def _layer(g: Graph, j: int) -> _Layer:
    """One recurrent node's weights in gatescope's per-gate form, after checking it runs as gatescope's cell."""
    op, a = g.nodes[j].op_type, g.attrs(j)
    _check_attributes(g, j, op, a)
    W, R, B, P = _fused(g, j, op, a)
    _check_initial_state(g, j)
    G, H = len(BLOCKS[op]), R.shape[2]
    reset_after = op == "GRU" and bool(a.get("linear_before_reset", 0))
    own: dict[str, np.ndarray] = {}
    for d, prefix in enumerate(("", "reverse.")[: W.shape[0]]):  # direction 1 of a bidirectional node: backward
        # x @ W layout: W[d].T (D, G*H), R[d].T (H, G*H); B = [Wb | Rb]; Rb_h inside the reset when reset_after
        one = gate_weights(BLOCKS[op], W[d].T, R[d].T, B[d, : G * H], B[d, G * H :], reset_after)
        own |= {prefix + n: w for n, w in (flip_z(one) if op == "GRU" else one).items()}
    Ps = [None if P is None else P[d].reshape(3, H) for d in range(W.shape[0])]  # P rows i, o, f
    return _Layer(own, W.shape[2], H, reset_after, Ps, a.get("direction", "forward"))


def _check_attributes(g: Graph, j: int, op: str, a: dict[str, Any]) -> None:
    """The node runs as gatescope's cell: a known direction, default activations, no clip, no coupled gates."""
    where = f"{g.name}: {g.label(j)}"
    direction = a.get("direction", "forward")
    if direction not in DIRECTIONS:
        raise FormatError(f"{where} runs direction={direction!r}; ONNX defines {', '.join(DIRECTIONS)}")
    acts = a.get("activations")
    if acts and [s.lower() for s in acts] != list(ACTIVATIONS[op]) * DIRECTIONS[direction]:
        default = ", ".join(s.capitalize() for s in ACTIVATIONS[op])
        raise FormatError(f"{where} uses activations {', '.join(acts)}; gatescope's cells compute only {default}")
    if "clip" in a:
        raise FormatError(f"{where} clips its gate inputs at {a['clip']:g}; gatescope's cells do not clip")
    if a.get("input_forget", 0):
        raise FormatError(f"{where} couples its input and forget gates (input_forget=1); this is not supported")


def _fused(
    g: Graph, j: int, op: str, a: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The node's W (n, G*H, D), R (n, G*H, H), B (n, 2*G*H) (zeros when absent) and P (n, 3H) or None,
    for its n directions."""
    where, G = f"{g.name}: {g.label(j)}", len(BLOCKS[op])
    W, R = _kernels(g, j, G, a)
    n, H = R.shape[0], R.shape[2]
    B = _weight(g, j, 3, "B")
    if B is None:
        B = np.zeros((n, 2 * G * H), np.float32)
    if B.shape != (n, 2 * G * H):
        raise FormatError(f"{where}: B has shape {B.shape}, expected ({n}, {2 * G * H})")
    P = _weight(g, j, 7, "P") if op == "LSTM" else None
    if P is not None and P.shape != (n, 3 * H):
        raise FormatError(f"{where}: P has shape {P.shape}, expected ({n}, {3 * H})")
    return W, R, B, P


def _kernels(g: Graph, j: int, G: int, a: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The node's W (n, G*H, D) and R (n, G*H, H), checked against each other, its direction and hidden_size."""
    where = f"{g.name}: {g.label(j)}"
    W, R = _weight(g, j, 1, "W"), _weight(g, j, 2, "R")
    if W is None or R is None:
        raise FormatError(f"{where} lacks its W or R input")
    n = DIRECTIONS[a.get("direction", "forward")]
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != n or R.shape[0] != n or R.shape[2] == 0:
        raise FormatError(
            f"{where}: W and R have shapes {W.shape} and {R.shape}, expected ({n}, G*H, D) and ({n}, G*H, H) "
            f"for direction={a.get('direction', 'forward')!r}"
        )
    H = R.shape[2]
    if "hidden_size" in a and a["hidden_size"] != H:
        raise FormatError(f"{where} declares hidden_size={a['hidden_size']}, but its R of shape {R.shape} has H = {H}")
    if W.shape[1] != G * H or R.shape[1] != G * H:
        raise FormatError(
            f"{where}: W and R have shapes {W.shape} and {R.shape}, expected ({n}, {G * H}, D) and ({n}, {G * H}, {H}) "
            f"({G} gate blocks of {H})"
        )
    return W, R


def _weight(g: Graph, j: int, idx: int, what: str) -> np.ndarray | None:
    """Input ``idx`` of node j as a float32 constant, None when the node leaves it out."""
    node = g.nodes[j]
    if len(node.input) <= idx or not node.input[idx]:
        return None
    value = g.const(node.input[idx])
    if value is None:
        where, why = f"{g.name}: {g.label(j)}: its {what} ({node.input[idx]!r})", g.why(node.input[idx])
        if node.input[idx] in g.inputs:
            raise FormatError(
                f"{where} is a graph input, not a constant; gatescope reads the weights stored in the file "
                "(as initializers, Constant nodes, or constant ops on them)"
            )
        raise FormatError(f"{where} is not a constant: {why}; gatescope runs fixed weights only")
    return as_float(f"{node.input[idx]} ({what} of {g.label(j)})", value, g.name)


def _check_initial_state(g: Graph, j: int) -> None:
    """initial_h and initial_c, when given, are a runtime input (gatescope's own ``state=``) or zero whatever
    the input: gatescope starts every layer from zeros."""
    node = g.nodes[j]
    for idx, what in ((5, "initial_h"), (6, "initial_c")):
        name = node.input[idx] if len(node.input) > idx else ""
        if not name or name in g.inputs or g.is_zero(name):
            continue
        where = f"{g.name}: {g.label(j)}: its {what} ({name!r})"
        value = g.const(name)
        if value is not None:
            big = float(np.abs(value).max()) if value.size and value.dtype.kind in "biuf" else float("nan")
            raise FormatError(
                f"{where} is a constant that is not zero (largest |value| {big:.3g}); gatescope starts every "
                "layer from zeros: to start from this state, give it to Network.trace(x, state=...)"
            )
        raise FormatError(f"{where} is not provably zero: {g.why(name)}; gatescope starts every layer from zeros")


def _embedding(g: Graph, first: int, D: int) -> np.ndarray | None:
    """The (V, D) table of a Gather feeding the first layer, None when it reads a graph input directly."""
    node = g.nodes[first]
    src, p = g.source(node.input[0])
    where = f"{g.name}: {g.label(first)}"
    if p is None:
        if src in g.inputs:
            return None
        raise FormatError(f"{where} reads a constant input; gatescope reads a graph input or an embedding there")
    gather = g.nodes[p]
    table = g.const(gather.input[0]) if gather.op_type == "Gather" and gather.domain in ONNX_DOMAINS else None
    if table is None or table.ndim != 2 or g.attrs(p).get("axis", 0) != 0:
        raise FormatError(
            f"{where} reads its input from {g.label(p)}; gatescope reads a graph input or an "
            "embedding (Gather on a constant (V, D) table) there"
        )
    if table.shape[1] != D:
        raise FormatError(f"{where}: its embedding has shape {table.shape}, the layer takes inputs of size {D}")
    return as_float(f"{gather.input[0]} (the embedding)", table, g.name)
