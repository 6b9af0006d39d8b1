"""The files PyTorch state_dicts come in, read into plain tensors: never pickled code.

    .pt / .pth / .bin   torch.save(...) archives (a Hugging Face pytorch_model.bin is one)
    .ckpt               a PyTorch Lightning checkpoint: {"state_dict": {"model.rnn.weight_ih_l0": ...},
                        "epoch", "global_step", "optimizer_states", "hyper_parameters", ...}
    .safetensors        safetensors.torch.save_file or save_model

All of .pt/.pth/.bin/.ckpt are read with ``torch.load(weights_only=True)``: a file with pickled
classes is refused. A training checkpoint ({"epoch", "model_state_dict", "optimizer_state_dict"}) is
read through its model's entry, the first of ``ENTRIES`` that holds a dict of tensors; what else was in
it is said (``Checkpoint.others``) and ends up on the model's card.

Tied weights (the decoder's weight *is* the embedding's): torch.save keeps both names. safetensors'
``save_model`` (0.8) writes the shared tensor once and records the dropped name in the metadata,
``{"embedding.weight": "decoder.weight"}`` (dropped name → kept name); ``untie`` puts it back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .common import FormatError

#: A checkpoint's entries that may hold the model's state_dict, in the order they are tried.
ENTRIES = ("model_state_dict", "state_dict", "model", "module", "net", "network")


@dataclass
class Checkpoint:
    """Where in a file the state_dict was: its entry ('' for a bare state_dict), the file's other entries."""

    entry: str = ""
    others: list[str] = field(default_factory=list)
    tied: dict[str, str] = field(default_factory=dict)  # dropped name -> kept name (safetensors' save_model)

    def notes(self) -> dict[str, Any]:
        """What Spec.meta records of it (nothing for a plain state_dict)."""
        out: dict[str, Any] = {}
        if self.entry:
            out["checkpoint"] = {"entry": self.entry, "others": self.others}
        if self.tied:
            out["tied"] = self.tied
        return out


def read_torch(path: Path) -> tuple[dict[str, np.ndarray], Checkpoint]:
    """Tensors of a torch.save file's state_dict (torch.load(weights_only=True)), and where they were."""
    try:
        import torch
    except ImportError:
        raise FormatError(
            f"{path.name}: reading {path.suffix} files needs PyTorch (pip install 'gatescope[torch]'); "
            "or save the state_dict as .safetensors (safetensors.torch.save_file(m.state_dict(), 'm.safetensors'))"
        ) from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types here (UnpicklingError, RuntimeError, ...)
        msg = str(e).splitlines()[0][:300] if str(e) else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            msg = "it holds pickled Python objects, not only tensors; save model.state_dict() instead"
        raise FormatError(f"{path.name} is not a readable PyTorch state_dict: {msg}") from None
    sd, where = unwrap(obj, path.name, lambda v: isinstance(v, torch.Tensor))
    return {k: v.detach().float().numpy() for k, v in sd.items()}, where


def unwrap(obj: Any, name: str, is_tensor: Any) -> tuple[dict[str, Any], Checkpoint]:
    """The state_dict in ``obj``: ``obj`` itself when it is a dict of tensors, else its first entry of
    ``ENTRIES`` that is one; a FormatError naming what the file holds otherwise."""

    def tensors_only(d: Any) -> bool:
        return isinstance(d, dict) and bool(d) and all(isinstance(k, str) and is_tensor(v) for k, v in d.items())

    if tensors_only(obj):
        return obj, Checkpoint()
    if isinstance(obj, dict):
        for entry in ENTRIES:
            if tensors_only(obj.get(entry)):
                return obj[entry], Checkpoint(entry, [str(k) for k in obj if k != entry])
    held = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, dict) else type(obj).__name__
    raise FormatError(
        f"{name} does not hold a state_dict (a dict of tensors), nor a checkpoint with one under "
        f"{', '.join(repr(e) for e in ENTRIES[:3])}; it holds {held}. Save model.state_dict() on its own"
    )


def untie(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> Checkpoint:
    """Put back (in place) the tensors safetensors' save_model dropped as shared, from its metadata."""
    tied = {k: v for k, v in (metadata or {}).items() if isinstance(v, str) and k not in tensors and v in tensors}
    for dropped, kept in tied.items():
        tensors[dropped] = tensors[kept]
    return Checkpoint(tied=tied)
