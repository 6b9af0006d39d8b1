"""The constant subgraphs of an ONNX graph, evaluated: what PyTorch's exporters write around the weights.

Both of torch.onnx.export's exporters may leave the weights of an LSTM/GRU node as small graphs over
the initializers instead of folding them: the TorchScript exporter (``dynamo=False``) without constant
folding cuts PyTorch's gate blocks with Slice and puts them back in ONNX's order with Concat and
Unsqueeze; the dynamo exporter does the same with ``optimize=False`` (and ignores
``do_constant_folding``); with a dynamic batch both write the zero initial state as a ConstantOfShape
or Expand of a shape read from the input, then Slice it per layer. This module evaluates the values
that no graph input reaches (ONNX operator docs for each op's semantics):

    Identity Constant Cast Shape Size Reshape Flatten Squeeze Unsqueeze Transpose Slice Gather Concat
    Split Expand Tile ConstantOfShape Range Add Sub Mul Div Neg

and proves a value zero when it is one whatever the input (a ConstantOfShape of 0, or zeros moved,
cut, expanded or concatenated), which is all an initial state needs. Every value it makes is bounded
before it is allocated (``LIMITS.max_bytes`` in all), and the walk is iterative: a deep or cyclic graph
gives a message, never a RecursionError. A value it cannot evaluate comes with the reason (``Why``):
the graph input it depends on, or the op it does not run, and the node on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .common import LIMITS, FormatError

ONNX_DOMAINS = ("", "ai.onnx")
#: Ops whose output 0 is zero wherever their data input 0 is (the other inputs only say where or how much).
ZERO_KEEPING = {
    "Identity", "Cast", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Slice", "Gather",
    "Split", "Expand", "Tile", "Dropout",
}  # fmt: skip


#: Ops whose output may be larger than their inputs: their size is counted before it is made.
GROWING = {"Gather", "Concat", "Expand", "Tile", "ConstantOfShape", "Range", "Add", "Sub", "Mul", "Div", "Cast"}


@dataclass(frozen=True)
class Why:
    """Why a value is not a graph constant: ``what`` (it depends on the graph input 'x', ...) and ``via``
    (the node that computes it from there, if any)."""

    what: str
    via: str = ""

    def __str__(self) -> str:
        return f"{self.what} (via {self.via})" if self.via and self.via not in self.what else self.what


class Constants:
    """Graph-constant values of one graph, by tensor name: ``value(name)`` is an array or a ``Why``."""

    def __init__(self, model: Any, name: str, nodes: list[Any], producer: dict[str, int], inputs: set[str]):
        from onnx import helper, numpy_helper

        graph = model.graph
        self.model, self.name, self.nodes, self.producer, self.inputs = model, name, nodes, producer, inputs
        self._dims: dict[str, list[int | None]] | None = None  # static shapes, read when a Shape needs one
        self._attr, self._to_array = helper.get_attribute_value, numpy_helper.to_array
        self._np_dtype = helper.tensor_dtype_to_np_dtype
        self.tensors = {t.name: t for t in graph.initializer}
        self._memo: dict[str, np.ndarray | Why] = {}
        self._spent = 0  # bytes of the values made so far

    def label(self, j: int) -> str:
        node = self.nodes[j]
        return f"{node.op_type} node {node.name!r}" if node.name else f"{node.op_type} node #{j}"

    def value(self, name: str) -> np.ndarray | Why:
        """The value of ``name``, evaluating the nodes that make it (an explicit stack, no recursion)."""
        stack, visiting = [name], set()
        while stack:
            n = stack[-1]
            if n in self._memo:
                stack.pop()
                continue
            j = self.producer.get(n)
            if j is None:
                self._memo[n] = self._leaf(n)
                stack.pop()
                continue
            pending = [i for i in self.nodes[j].input if i and i not in self._memo]
            if pending and n not in visiting:
                visiting.add(n)
                stack += pending
                continue
            if pending:  # came back to n with inputs still unknown: they lead back to n
                self._memo[n] = Why("it is part of a cycle in the graph", self.label(j))
            else:
                self._run(j)
            stack.pop()
        return self._memo[name]

    def _leaf(self, name: str) -> np.ndarray | Why:
        if name in self.tensors:
            try:
                return self._to_array(self.tensors[name])
            except Exception as e:  # a damaged tensor: unknown element type, data of the wrong size
                raise FormatError(f"{self.name}: tensor {name!r} cannot be read ({_first_line(e)})") from None
        if name in self.inputs:
            return Why(f"it depends on the graph input {name!r}")
        return Why(f"nothing in the graph defines {name!r}")

    def _run(self, j: int) -> None:
        """Evaluate node j (its inputs are known), memoising each of its outputs as a value or a Why."""
        node = self.nodes[j]
        outs = [o for o in node.output if o]
        args = [self._memo[i] if i else None for i in node.input]
        why = next((a for a in args if isinstance(a, Why)), None)
        op = OPS.get(node.op_type) if node.domain in ONNX_DOMAINS else None
        dims = None
        if node.op_type == "Shape" and node.domain in ONNX_DOMAINS and why is not None:
            dims = self._static_dims(node.input[0], self._attrs(j))  # fixed in the graph, whatever the input
        if dims is not None:
            result: list[np.ndarray] | Why = [np.array(dims, np.int64)]
        elif why is not None:
            result = Why(why.what, why.via or self.label(j))
        elif op is None:
            result = Why(f"it is computed by an op gatescope does not evaluate ({self.label(j)})", self.label(j))
        else:
            try:
                result = op(self, j, args, self._attrs(j))
            except FormatError:
                raise
            except Exception as e:  # an input of the wrong shape or type: the graph is wrong, say where
                raise FormatError(f"{self.name}: {self.label(j)} cannot be evaluated ({_first_line(e)})") from None
            if not isinstance(result, Why):
                if len(result) < len(outs):
                    raise FormatError(f"{self.name}: {self.label(j)} has {len(outs)} outputs, it makes {len(result)}")
                if node.op_type not in GROWING:  # no bigger than its inputs: counted once made
                    self.make(j, (sum(int(r.nbytes) for r in result),), 1)
        for k, o in enumerate(outs):
            self._memo[o] = result if isinstance(result, Why) else result[k]

    def _static_dims(self, name: str, a: dict[str, Any]) -> list[int] | None:
        """The dims a Shape node (start, end in ``a``) reads from ``name`` when all are fixed integers in the
        graph's static shapes (ONNX shape inference), else None."""
        if self._dims is None:
            from onnx import shape_inference

            try:
                inferred = shape_inference.infer_shapes(self.model).graph
            except Exception:  # inference refuses odd graphs: use the shapes the file declares
                inferred = self.model.graph
            self._dims = {}
            for vi in [*inferred.input, *inferred.value_info, *inferred.output]:
                t = vi.type.tensor_type
                if t.HasField("shape"):
                    self._dims[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        dims = self._dims.get(name)
        if dims is None:
            return None
        picked = dims[slice(a.get("start", 0), a.get("end"))]
        return picked if all(isinstance(d, int) for d in picked) else None  # type: ignore[return-value]

    def _attrs(self, j: int) -> dict[str, Any]:
        out = {}
        for a in self.nodes[j].attribute:
            v = self._attr(a)
            out[a.name] = self._to_array(v) if hasattr(v, "data_type") else v
        return out

    def make(self, j: int, shape: tuple[int, ...], itemsize: int) -> None:
        """Count a value of ``shape`` against the budget before it is made; a FormatError past it."""
        nbytes = int(np.prod(shape, dtype=np.float64)) * itemsize
        self._spent += nbytes
        if any(d < 0 for d in shape) or self._spent > LIMITS.max_bytes:
            raise FormatError(
                f"{self.name}: {self.label(j)} makes a constant of shape {tuple(shape)}: the graph's constants "
                f"would take more than {LIMITS.max_bytes >> 20} MB, the limit for one file"
            )

    def is_zero(self, name: str) -> bool:
        """Whether ``name`` is zero whatever the graph input: a zero constant, a ConstantOfShape of 0, or
        zeros moved, cut, expanded or concatenated (its shape may depend on the input, its values do not)."""
        for _ in range(len(self.nodes) + 1):  # a step a node, as a damaged file may hold a cycle
            v = self.value(name)
            if isinstance(v, np.ndarray):
                return v.dtype != object and not np.any(v)
            j = self.producer.get(name)
            if j is None or self.nodes[j].domain not in ONNX_DOMAINS:
                return False
            node = self.nodes[j]
            if node.op_type == "ConstantOfShape":
                fill = self._attrs(j).get("value")
                return fill is None or not np.any(fill)
            if node.op_type == "Concat":
                return all(self.is_zero(i) for i in node.input if i)
            if node.op_type not in ZERO_KEEPING or not node.input:
                return False
            name = node.input[0]
        return False


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [type(e).__name__])[0][:300]


# The ops ----------------------------------------------------------------------------------

Op = Callable[[Constants, int, list[Any], dict[str, Any]], "list[np.ndarray] | Why"]


def _ints(a: np.ndarray | None) -> list[int] | None:
    return None if a is None else [int(v) for v in np.asarray(a).reshape(-1)]


def _arg(args: list[Any], k: int) -> Any:
    return args[k] if len(args) > k else None


def _constant(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray] | Why:
    for key, dtype in (("value", None), ("value_float", np.float32), ("value_floats", np.float32)):
        if key in a:
            return [np.asarray(a[key], dtype)]
    for key in ("value_int", "value_ints"):
        if key in a:
            return [np.asarray(a[key], np.int64)]
    return Why(f"it is a constant of a kind gatescope does not read ({', '.join(a) or 'no value'})", c.label(j))


def _cast(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray] | Why:
    dtype = np.dtype(c._np_dtype(a["to"]))
    if dtype.kind not in "biuf":
        return Why(f"it is cast to {dtype}, which gatescope does not evaluate", c.label(j))
    c.make(j, args[0].shape, dtype.itemsize)
    return [args[0].astype(dtype)]


def _shape(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    dims = list(args[0].shape)
    return [np.array(dims[slice(a.get("start", 0), a.get("end"))], np.int64)]


def _reshape(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, shape = args[0], _ints(_arg(args, 1)) or a.get("shape", [])
    if not a.get("allowzero", 0):
        shape = [x.shape[k] if d == 0 else d for k, d in enumerate(shape)]
    return [x.reshape(shape)]


def _flatten(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, axis = args[0], a.get("axis", 1)
    axis = axis + x.ndim if axis < 0 else axis
    return [x.reshape(int(np.prod(x.shape[:axis])), -1)]


def _axes(args: list[Any], a: dict[str, Any]) -> list[int] | None:
    return _ints(_arg(args, 1)) if _arg(args, 1) is not None else a.get("axes")


def _squeeze(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    axes = _axes(args, a)
    return [np.squeeze(args[0], axis=None if axes is None else tuple(axes))]


def _unsqueeze(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, axes = args[0], _axes(args, a) or []
    rank = x.ndim + len(axes)
    return [np.expand_dims(x, tuple(sorted(k + rank if k < 0 else k for k in axes)))]


def _transpose(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    return [np.transpose(args[0], a.get("perm"))]


def _slice(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x = args[0]
    if len(args) > 1:  # opset 10 on: starts, ends, axes, steps are inputs
        starts, ends = _ints(args[1]) or [], _ints(args[2]) or []
        axes, steps = _ints(_arg(args, 3)), _ints(_arg(args, 4))
    else:  # opset 1-9: attributes
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    axes = list(range(len(starts))) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = axis + x.ndim if axis < 0 else axis
        n = x.shape[axis]
        start, end = (v + n if v < 0 else v for v in (start, end))
        if step > 0:
            index[axis] = slice(min(max(start, 0), n), min(max(end, 0), n), step)
        else:  # clamped to [0, n-1] and [-1, n-1], where -1 means before index 0
            end = min(max(end, -1), n - 1)
            index[axis] = slice(min(max(start, 0), n - 1), None if end < 0 else end, step)
    return [x[tuple(index)]]


def _gather(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, idx, axis = args[0], np.asarray(args[1], np.int64), a.get("axis", 0)
    c.make(j, x.shape[: axis % x.ndim] + idx.shape + x.shape[axis % x.ndim + 1 :], x.itemsize)
    return [np.take(x, idx, axis=axis)]


def _concat(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    parts = [x for x in args if x is not None]
    c.make(j, (sum(x.nbytes for x in parts),), 1)
    return [np.concatenate(parts, axis=a["axis"])]


def _split(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    x, axis = args[0], a.get("axis", 0)
    sizes = _ints(_arg(args, 1)) or a.get("split")
    n_out = len([o for o in c.nodes[j].output if o]) if "num_outputs" not in a else a["num_outputs"]
    if not sizes:
        n = x.shape[axis]
        sizes = [-(-n // n_out)] * (n_out - 1) + [n - -(-n // n_out) * (n_out - 1)]
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


def _expand(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    shape = np.broadcast_shapes(args[0].shape, tuple(_ints(args[1]) or ()))
    c.make(j, shape, args[0].itemsize)
    return [np.array(np.broadcast_to(args[0], shape))]


def _tile(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    reps = _ints(args[1]) or []
    c.make(j, tuple(d * r for d, r in zip(args[0].shape, reps)), args[0].itemsize)
    return [np.tile(args[0], reps)]


def _constant_of_shape(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    fill = a.get("value", np.zeros(1, np.float32))
    shape = tuple(_ints(args[0]) or ())
    c.make(j, shape, fill.itemsize)
    return [np.full(shape, fill.reshape(-1)[0], fill.dtype)]


def _range(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
    start, limit, delta = (np.asarray(v).reshape(()).item() for v in args[:3])
    dtype = np.asarray(args[0]).dtype
    c.make(j, (max(int(np.ceil((limit - start) / delta)), 0),), dtype.itemsize)
    return [np.arange(start, limit, delta, dtype=dtype)]


def _arith(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Op:
    def op(c: Constants, j: int, args: list[Any], a: dict[str, Any]) -> list[np.ndarray]:
        x, y = args[0], args[1]
        c.make(j, np.broadcast_shapes(x.shape, y.shape), max(x.itemsize, y.itemsize))
        return [np.asarray(fn(x, y), x.dtype)]

    return op


def _div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu":  # integer division truncates toward zero
        q = np.abs(x) // np.abs(y)
        return np.where((x < 0) != (y < 0), -q, q)
    return x / y


OPS: dict[str, Op] = {
    "Identity": lambda c, j, args, a: [args[0]],
    "Dropout": lambda c, j, args, a: [args[0]],
    "Constant": _constant,
    "Cast": _cast,
    "Shape": _shape,
    "Size": lambda c, j, args, a: [np.array(args[0].size, np.int64)],
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Transpose": _transpose,
    "Slice": _slice,
    "Gather": _gather,
    "Concat": _concat,
    "Split": _split,
    "Expand": _expand,
    "Tile": _tile,
    "ConstantOfShape": _constant_of_shape,
    "Range": _range,
    "Add": _arith(np.add),
    "Sub": _arith(np.subtract),
    "Mul": _arith(np.multiply),
    "Div": _arith(_div),
    "Neg": lambda c, j, args, a: [np.negative(args[0])],
}
