"""An ONNX graph, walkable by tensor name: its constants (evaluated by onnx_const), its runtime inputs,
each tensor's producer and consumers; the checks every file passes first (no external data, nothing
read that nothing defines)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .common import FormatError
from .onnx_const import ONNX_DOMAINS, Constants, Why

#: Ops that only move data around (input 0 to output 0): looked through between layers and into the head.
MOVES = {"Squeeze", "Unsqueeze", "Reshape", "Transpose", "Flatten", "Identity", "Dropout"}


class Graph:
    """The main graph, walkable by tensor name: constants, graph inputs, producers and consumers."""

    def __init__(self, model: Any, name: str):
        from onnx import helper

        graph = model.graph
        self.name = name
        self.nodes = list(graph.node)
        self._helper = helper
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
        self.constants = Constants(model, name, self.nodes, self.producer, self.inputs)

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
        """The value of a graph constant (an initializer, a Constant node, or what constant ops make of
        them: onnx_const), or None when it is an input or depends on one (``why`` says how)."""
        v = self.constants.value(name)
        return None if isinstance(v, Why) else v

    def why(self, name: str) -> Why:
        """Why ``name`` is not a graph constant (call it when ``const`` gave None)."""
        v = self.constants.value(name)
        return v if isinstance(v, Why) else Why("it is a constant")

    def is_zero(self, name: str) -> bool:
        """Whether ``name`` is zero whatever the graph input (onnx_const.Constants.is_zero)."""
        return self.constants.is_zero(name)

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
