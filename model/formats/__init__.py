"""Importers: each turns a file into the same ``Network`` (weights in the form of
``network.Network``); nothing downstream knows where weights came from.

    .safetensors   gatescope's own (with metadata) or a PyTorch state_dict
    .pt / .pth     a PyTorch state_dict (needs torch; weights_only=True)
    .keras / .h5   Keras LSTM, GRU, SimpleRNN (needs h5py)
    .onnx          ONNX LSTM, GRU, RNN nodes (needs onnx)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..network import Network
from . import native, pytorch
from .common import FormatError, find_vocab, head_fields, parse_vocab, read_safetensors, read_vocab, sniff, with_head

SUFFIXES = (".safetensors", ".pt", ".pth", ".keras", ".h5", ".onnx")


def load_file(
    path: str | Path,
    vocab: str | Path | list[str] | None = None,
    *,
    head: str | None = None,
    labels: list[str] | None = None,
    head_at: str | None = None,
) -> Network:
    """Read any supported weight file; ``vocab`` (a JSON file or a token list) makes it a text model;
    ``head``, ``labels``, ``head_at`` say what its output means (model/heads.py), over what the file says."""
    path = Path(path)
    net = _read(path, vocab)
    return with_head(net, path.name, head=head, labels=labels, head_at=head_at)


def _read(path: Path, vocab: str | Path | list[str] | None) -> Network:
    """The network in a weight file, as the file describes it."""
    if not path.is_file():
        raise FormatError(f"no such file: {path}")
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix.lower()
    kind = sniff(path)
    if suffix == ".safetensors":
        tensors, metadata = read_safetensors(path)
        if native.is_native(metadata):  # self-contained: its vocabulary is in its metadata
            return native.from_parts(tensors, metadata["gatescope"], path.name)  # type: ignore[index]
    voc = _vocab(path, vocab)
    if suffix == ".safetensors":
        if pytorch.is_torch_state_dict(tensors):
            return pytorch.from_state_dict(tensors, path.name, voc, head_fields(metadata, path.name))
        shown = ", ".join(sorted(tensors)[:8])
        raise FormatError(
            f"{path.name}: a safetensors file that is neither a gatescope model nor a PyTorch "
            f"nn.LSTM/GRU/RNN state_dict (its tensors: {shown or 'none'})"
        )
    if suffix in (".pt", ".pth"):
        if kind != "zip":
            raise FormatError(f"{path.name} is not a PyTorch file (PyTorch saves a zip archive)")
        return pytorch.from_state_dict(pytorch.read_pt(path), path.name, voc)
    if suffix in (".keras", ".h5", ".weights.h5"):
        from . import keras

        return keras.load(path, voc)
    if suffix == ".onnx":
        from . import onnx

        return onnx.load(path, voc)
    raise FormatError(
        f"{path.name}: unsupported file type {path.suffix or '(none)'}; gatescope reads {', '.join(SUFFIXES)}"
    )


def _vocab(path: Path, vocab: str | Path | list[str] | None) -> dict[str, Any] | None:
    if isinstance(vocab, list):
        return parse_vocab(vocab)
    if vocab is not None:
        return read_vocab(vocab)
    beside = find_vocab(path)
    return read_vocab(beside) if beside else None


__all__ = ["FormatError", "load_file", "native", "pytorch"]
