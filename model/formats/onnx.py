"""ONNX: a graph of LSTM, GRU or RNN nodes, one per layer, with an optional embedding
(Gather on a constant table) before the first and an optional linear head (MatMul, Add
or Gemm, then perhaps Softmax) after the last.

Layout (ONNX operator docs: LSTM, GRU, RNN, opsets 7-22), for one direction and G gates:
``W`` (1, G*H, D), ``R`` (1, G*H, H), optional ``B`` (1, 2*G*H) = [Wb | Rb], the two
biases adding; gate blocks i, o, f, c (LSTM), z, r, h (GRU), one block (RNN); LSTM
peepholes ``P`` (1, 3H) in the order i, o, f, with f and i seeing c_prev and o the new c
(gatescope's "peephole" cell). The GRU:

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
a message, what gatescope's cells cannot run as written: reverse or bidirectional
layers, non-default activations, clip, input_forget=1, a non-zero constant initial
state, layers of mixed types or sizes, computed weights. ``layout`` (batch-major X)
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

RECURRENT = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}
#: Gate blocks of W, R and B in ONNX's order, named as gatescope names them.
BLOCKS = {"LSTM": ("i", "o", "f", "c"), "GRU": ("z", "r", "h"), "RNN": ("h",)}
#: The default activations, the only ones gatescope's cells compute.
ACTIVATIONS = {"LSTM": ("sigmoid", "tanh", "tanh"), "GRU": ("sigmoid", "tanh"), "RNN": ("tanh",)}
#: Ops that only move data around (input 0 to output 0): looked through between layers and into the head.
MOVES = {"Squeeze", "Unsqueeze", "Reshape", "Transpose", "Flatten", "Identity", "Dropout"}
ONNX_DOMAINS = ("", "ai.onnx")


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


class _Graph:
    """The main graph, walkable by tensor name: constants, graph inputs, producers and consumers."""

    def __init__(self, graph: Any, name: str):
        from onnx import helper, numpy_helper

        self.name = name
        self.nodes = list(graph.node)
        self._helper, self.to_array = helper, numpy_helper.to_array
        self.tensors = {t.name: t for t in graph.initializer}
        self.inputs = {i.name for i in graph.input} - set(self.tensors)  # runtime inputs only
        self.producer: dict[str, int] = {}
        self.consumers: dict[str, list[int]] = {}
        for j, node in enumerate(self.nodes):
            for o in node.output:
                if o:
                    self.producer[o] = j
            for i in node.input:
                if i:
                    self.consumers.setdefault(i, []).append(j)
        self._refuse_external()
        self._refuse_undefined()
        self._cache: dict[str, np.ndarray | None] = {}

    def _refuse_external(self) -> None:
        """A FormatError when weights (initializers or Constant values) sit in an external data file."""
        from onnx import TensorProto

        EXTERNAL = TensorProto.EXTERNAL
        external = [n for n, t in self.tensors.items() if t.data_location == EXTERNAL]
        for j, node in enumerate(self.nodes):
            if any(a.name == "value" and a.t.data_location == EXTERNAL for a in node.attribute):
                external.append(node.output[0] if node.output else self.label(j))
        if external:
            raise FormatError(
                f"{self.name}: its weights ({', '.join(external[:4])}{', ...' if len(external) > 4 else ''}) are "
                "stored in an external data file; gatescope reads self-contained .onnx files: re-save it with "
                "onnx.save_model(onnx.load(path), new_path, save_as_external_data=False), "
                "or export with torch.onnx.export(..., external_data=False)"
            )

    def _refuse_undefined(self) -> None:
        """A FormatError when a node reads a tensor that nothing defines (a truncated or broken file)."""
        defined = set(self.tensors) | self.inputs | set(self.producer)
        for j, node in enumerate(self.nodes):
            for i in node.input:
                if i and i not in defined:
                    raise FormatError(
                        f"{self.name}: {self.label(j)} reads {i!r}, which nothing in the graph defines "
                        "(a truncated or broken file?)"
                    )

    def label(self, j: int) -> str:
        node = self.nodes[j]
        return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{j}"

    def attrs(self, j: int) -> dict[str, Any]:
        out = {}
        for a in self.nodes[j].attribute:
            v = self._helper.get_attribute_value(a)
            if isinstance(v, bytes):
                v = v.decode("utf-8", "replace")
            elif isinstance(v, list):
                v = [s.decode("utf-8", "replace") if isinstance(s, bytes) else s for s in v]
            out[a.name] = v
        return out

    def const(self, name: str) -> np.ndarray | None:
        """The value of a constant (initializer or Constant node), or None when it is computed or an input."""
        if name not in self._cache:
            try:
                self._cache[name] = self._value(name)
            except Exception as e:  # a damaged tensor: unknown element type, data of the wrong size
                raise FormatError(f"{self.name}: tensor {name!r} cannot be read ({_first_line(e)})") from None
        return self._cache[name]

    def _value(self, name: str) -> np.ndarray | None:
        if name in self.tensors:
            return self.to_array(self.tensors[name])
        j = self.producer.get(name)
        if j is None or self.nodes[j].domain not in ONNX_DOMAINS:
            return None
        if self.nodes[j].op_type == "Identity":
            return self.const(self.nodes[j].input[0])
        if self.nodes[j].op_type == "Constant":
            a = self.attrs(j)
            for key in ("value", "value_float", "value_floats", "value_int", "value_ints"):
                if key in a:
                    return self.to_array(a[key]) if key == "value" else np.asarray(a[key])
        return None

    def source(self, name: str) -> tuple[str, int | None]:
        """Where a tensor comes from, looking through data-moving ops: (name, producing node or None)."""
        for _ in range(len(self.nodes)):  # at most one step a node: a damaged file may hold a cycle
            j = self.producer.get(name)
            if j is None:
                break
            node = self.nodes[j]
            if node.op_type not in MOVES or node.domain not in ONNX_DOMAINS:
                return name, j
            name = node.input[0]
        return name, None


@dataclass
class _Layer:
    params: dict[str, np.ndarray]  # gatescope's per-gate weights (cells.PARAMS), peepholes apart
    D: int
    H: int
    reset_after: bool = False  # gru: linear_before_reset=1
    P: np.ndarray | None = None  # lstm: (3, H) peepholes i, o, f, or None


def _convert(m: Any, name: str, vocab: dict[str, Any] | None) -> Network:
    g = _Graph(m.graph, name)
    chain, op = _recurrent_nodes(g, name)
    layers = [_layer(g, j) for j in chain]
    H, reset_after = _check_stack(g, chain, layers, name)
    peephole = any(layer.P is not None and np.any(layer.P) for layer in layers)
    params = stack([layer.params | (_peepholes(layer.P, H) if peephole else {}) for layer in layers])
    D = layers[0].D
    embedding = _embedding(g, chain[0], D)
    head = _head(g, chain[-1], H)
    cell = "peephole" if peephole else RECURRENT[op]
    spec: dict[str, Any] = dict(cell=cell, input_size=D, hidden_size=H, num_layers=len(layers), reset_after=reset_after)
    source: dict[str, Any] = {"format": "onnx", "file": name}
    producer = f"{m.producer_name} {m.producer_version}".strip()
    if producer:
        source["producer"] = producer
    heads = head_fields({p.key: p.value for p in m.metadata_props}, name)
    if head is not None and head[2]:
        source["head"] = "the file applies its head to the final hidden state only; gatescope to every step"
        heads.setdefault("head_at", "last")  # only the last step's prediction is the file's answer
    return assemble(name, spec, params, source, vocab, embedding, head[:2] if head else None, heads=heads)


def _recurrent_nodes(g: _Graph, name: str) -> tuple[list[int], str]:
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


def _check_stack(g: _Graph, chain: list[int], layers: list[_Layer], name: str) -> tuple[int, bool]:
    """The layers' one hidden size H and one GRU form, each layer checked to read the previous one's Y."""
    H = layers[0].H
    for k, (j, layer) in enumerate(zip(chain, layers)):
        if layer.H != H:
            raise FormatError(
                f"{name}: {g.label(j)} (layer {k}) has hidden size {layer.H}, layer 0 has {H}; "
                "gatescope needs one hidden size throughout"
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
    return H, reset_after.pop()


def _peepholes(P: np.ndarray | None, H: int) -> dict[str, np.ndarray]:
    """A layer's peephole weights p_i, p_o, p_f (H,) each: zeros for a layer without P in a peephole stack."""
    p_i, p_o, p_f = P if P is not None else np.zeros((3, H), np.float32)
    return {"p_i": p_i, "p_o": p_o, "p_f": p_f}


def _layer(g: _Graph, j: int) -> _Layer:
    """One recurrent node's weights in gatescope's per-gate form, after checking it runs as gatescope's cell."""
    op, a = g.nodes[j].op_type, g.attrs(j)
    _check_attributes(g, j, op, a)
    W, R, B, P = _fused(g, j, op, a)
    _check_initial_state(g, j)
    G, H = len(BLOCKS[op]), R.shape[2]
    reset_after = op == "GRU" and bool(a.get("linear_before_reset", 0))
    # x @ W layout: W[0].T (D, G*H), R[0].T (H, G*H); B = [Wb | Rb]; Rb_h inside the reset when reset_after
    own = gate_weights(BLOCKS[op], W[0].T, R[0].T, B[0, : G * H], B[0, G * H :], reset_after)
    if op == "GRU":
        own = flip_z(own)
    return _Layer(own, W.shape[2], H, reset_after, None if P is None else P[0].reshape(3, H))  # P rows i, o, f


def _check_attributes(g: _Graph, j: int, op: str, a: dict[str, Any]) -> None:
    """The node runs as gatescope's cell: forwards, default activations, no clip, no coupled gates."""
    where = f"{g.name}: {g.label(j)}"
    direction = a.get("direction", "forward")
    if direction != "forward":
        raise FormatError(f"{where} runs direction={direction!r}; gatescope runs forward layers only")
    acts = a.get("activations")
    if acts and [s.lower() for s in acts] != list(ACTIVATIONS[op]):
        default = ", ".join(s.capitalize() for s in ACTIVATIONS[op])
        raise FormatError(f"{where} uses activations {', '.join(acts)}; gatescope's cells compute only {default}")
    if "clip" in a:
        raise FormatError(f"{where} clips its gate inputs at {a['clip']:g}; gatescope's cells do not clip")
    if a.get("input_forget", 0):
        raise FormatError(f"{where} couples its input and forget gates (input_forget=1); this is not supported")


def _fused(
    g: _Graph, j: int, op: str, a: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The node's W (1, G*H, D), R (1, G*H, H), B (1, 2*G*H) (zeros when absent) and P (1, 3H) or None."""
    where, G = f"{g.name}: {g.label(j)}", len(BLOCKS[op])
    W, R = _kernels(g, j, G, a)
    H = R.shape[2]
    B = _weight(g, j, 3, "B")
    if B is None:
        B = np.zeros((1, 2 * G * H), np.float32)
    if B.shape != (1, 2 * G * H):
        raise FormatError(f"{where}: B has shape {B.shape}, expected (1, {2 * G * H})")
    P = _weight(g, j, 7, "P") if op == "LSTM" else None
    if P is not None and P.shape != (1, 3 * H):
        raise FormatError(f"{where}: P has shape {P.shape}, expected (1, {3 * H})")
    return W, R, B, P


def _kernels(g: _Graph, j: int, G: int, a: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """The node's W (1, G*H, D) and R (1, G*H, H), checked against each other and its hidden_size."""
    where = f"{g.name}: {g.label(j)}"
    W, R = _weight(g, j, 1, "W"), _weight(g, j, 2, "R")
    if W is None or R is None:
        raise FormatError(f"{where} lacks its W or R input")
    if W.ndim != 3 or R.ndim != 3 or W.shape[0] != 1 or R.shape[0] != 1 or R.shape[2] == 0:
        raise FormatError(f"{where}: W and R have shapes {W.shape} and {R.shape}, expected (1, G*H, D) and (1, G*H, H)")
    H = R.shape[2]
    if "hidden_size" in a and a["hidden_size"] != H:
        raise FormatError(f"{where} declares hidden_size={a['hidden_size']}, but its R of shape {R.shape} has H = {H}")
    if W.shape[1] != G * H or R.shape[1] != G * H:
        raise FormatError(
            f"{where}: W and R have shapes {W.shape} and {R.shape}, expected (1, {G * H}, D) and (1, {G * H}, {H}) "
            f"({G} gate blocks of {H})"
        )
    return W, R


def _weight(g: _Graph, j: int, idx: int, what: str) -> np.ndarray | None:
    """Input ``idx`` of node j as a float32 constant, None when the node leaves it out."""
    node = g.nodes[j]
    if len(node.input) <= idx or not node.input[idx]:
        return None
    value = g.const(node.input[idx])
    if value is None:
        how = "a graph input" if node.input[idx] in g.inputs else "computed in the graph"
        raise FormatError(
            f"{g.name}: {g.label(j)}: its {what} ({node.input[idx]!r}) is {how}, not a constant; gatescope reads "
            "weights stored as initializers or Constant nodes (export with constant folding, e.g. "
            "torch.onnx.export(..., do_constant_folding=True))"
        )
    return as_float(f"{node.input[idx]} ({what} of {g.label(j)})", value, g.name)


def _check_initial_state(g: _Graph, j: int) -> None:
    """initial_h and initial_c, when given, are zero: gatescope starts every layer from zeros."""
    node = g.nodes[j]
    for idx, what in ((5, "initial_h"), (6, "initial_c")):
        if len(node.input) > idx and node.input[idx] and not _starts_at_zero(g, node.input[idx]):
            raise FormatError(
                f"{g.name}: {g.label(j)}: its {what} is not zero; gatescope starts every layer from zeros "
                "(pass a state to Network.trace instead)"
            )


def _starts_at_zero(g: _Graph, name: str) -> bool:
    """An initial state is fine when it is a runtime input or provably zero: a zero constant, perhaps
    expanded, tiled or reshaped, or a ConstantOfShape of zero (as PyTorch and tf2onnx write it)."""
    for _ in range(len(g.nodes) + 1):
        if name in g.inputs:
            return True
        value = g.const(name)
        if value is not None:
            return not np.any(value)
        j = g.producer.get(name)
        if j is None or g.nodes[j].domain not in ONNX_DOMAINS:
            return False
        if g.nodes[j].op_type == "ConstantOfShape":
            fill = g.attrs(j).get("value")
            return fill is None or not np.any(g.to_array(fill))
        if g.nodes[j].op_type not in MOVES | {"Expand", "Tile"}:
            return False
        name = g.nodes[j].input[0]
    return False


def _embedding(g: _Graph, first: int, D: int) -> np.ndarray | None:
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


def _head(g: _Graph, last: int, H: int) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """The linear head (W (H, V), b (V,), applied to the final state only?) after the last layer, if any."""
    outs = g.nodes[last].output
    found = [(*h, k == 1) for k in (0, 1) if len(outs) > k and outs[k] for h in _heads_from(g, outs[k], H)]
    if len(found) > 1:
        raise FormatError(f"{g.name}: the last recurrent layer feeds {len(found)} linear heads; gatescope reads one")
    return found[0] if found else None


def _heads_from(g: _Graph, name: str, H: int, seen: set[int] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
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


def _matmul(g: _Graph, j: int) -> RawHead | None:
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


def _gemm(g: _Graph, j: int) -> RawHead | None:
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
    g: _Graph, j: int, H: int, W: np.ndarray, b: np.ndarray | None, bias_name: str
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
