"""gatescope's recurrent core: networks that record every gate at every timestep.

    import model
    net = model.load("code")                 # a bundled model, or a path to a weight file
    tr = net.trace("def f(x):")              # or a (T, D) array for vector models
    tr.layers[0]["f"]                        # (T, H) forget gate, float32
    idx = model.index(net, ["src/"], "src.zarr")   # a corpus index (model/analysis/index.py); model.Index reads one
    a = model.attribute(net, "def f(x):", t=8)     # what the prediction at step 8 depends on (model/attribution.py)

Plain NumPy; usable from a notebook on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import series, threads
from .analysis.index import build as index
from .analysis.store import Index
from .attribution import Attribution, Forward, attribute
from .cells import GATES
from .errors import Cancelled, FormatError, GatescopeError, InputError, SeveralModules, UnknownTokenError
from .formats import load_file
from .formats.native import save
from .heads import Head
from .network import Network, Spec
from .trace import Trace, TraceBuffer

#: Where the bundled models live: one folder each, holding ``model.safetensors`` (and its card).
PRETRAINED = Path(__file__).parent / "pretrained"


def available() -> list[str]:
    """The names of the bundled models."""
    if not PRETRAINED.is_dir():
        return []
    return sorted(p.name for p in PRETRAINED.iterdir() if (p / "model.safetensors").is_file())


def load(
    source: str | Path,
    vocab: str | Path | list[str] | dict[str, Any] | None = None,
    *,
    head: str | None = None,
    labels: list[str] | None = None,
    head_at: str | None = None,
    module: str | None = None,
) -> Network:
    """A network from a bundled model's name, a weight file, or a folder holding ``model.safetensors``.

    ``vocab``: a vocabulary file or a Hugging Face tokenizer.json (or its JSON: a token list, {token: id},
    {"tokens", "tokenizer", "unk", "lowercase", "split_punct", "strip_punct", "eol"}), when it is not
    beside the weights (``<name>.vocab.json``, ``<name>.tokenizer.json``, ``tokenizer.json``, ``vocab.json``).
    ``head`` ("next" | "classes" | "values"), ``labels`` (a name per output) and ``head_at`` ("every" |
    "last") say what the output means, over what the file says and what gatescope infers (model/heads.py).
    ``module``: which recurrent module to read from a PyTorch file that holds several ("encoder.lstm");
    without it such a file raises ``SeveralModules`` (a FormatError) listing them in ``.modules``."""
    path = Path(source)
    if path.is_dir():
        if not (path / "model.safetensors").is_file():
            raise FormatError(f"{source!s} is a folder without model.safetensors")
        path = path / "model.safetensors"
    elif not path.exists() and isinstance(source, str) and (PRETRAINED / source / "model.safetensors").is_file():
        path = PRETRAINED / source / "model.safetensors"
    if not path.exists():
        names = available()
        listing = f"bundled models: {', '.join(names)}" if names else "no models are bundled yet"
        raise FormatError(f"{source!s} is neither a file nor a bundled model ({listing})")
    return load_file(path, vocab, head=head, labels=labels, head_at=head_at, module=module)


__all__ = [
    "GATES",
    "Attribution",
    "Forward",
    "FormatError",
    "GatescopeError",
    "Head",
    "Index",
    "InputError",
    "Network",
    "Spec",
    "Trace",
    "TraceBuffer",
    "Cancelled",
    "SeveralModules",
    "UnknownTokenError",
    "attribute",
    "available",
    "index",
    "load",
    "save",
    "series",
    "threads",
]
