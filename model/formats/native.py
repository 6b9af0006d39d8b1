"""gatescope's own format: one safetensors file holding the weights, with the model's
``Spec`` as JSON in the header's metadata under the key ``"gatescope"``.

Weight names and shapes are those of ``network.Network`` (``layers.<k>.W_f`` (D, H), ...),
stored in the network's dtype, so a save/load round trip is exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..network import Network, Spec
from .common import FormatError, read_safetensors

KEY = "gatescope"
#: Version of the metadata layout, bumped on incompatible changes.
VERSION = 1


def save(net: Network, path: str | Path) -> Path:
    """Write ``net`` to ``path`` (a .safetensors file) in gatescope's own format."""
    from safetensors.numpy import save_file

    path = Path(path)
    meta = {"version": VERSION, "spec": net.spec.to_dict()}
    tensors = {n: np.ascontiguousarray(a) for n, a in net.params.items()}
    save_file(tensors, str(path), metadata={KEY: json.dumps(meta)})
    return path


def is_native(metadata: dict[str, str] | None) -> bool:
    return bool(metadata) and KEY in metadata  # type: ignore[operator]


def load(path: str | Path) -> Network:
    """Read a gatescope safetensors file."""
    tensors, metadata = read_safetensors(path)
    if not is_native(metadata):
        raise FormatError(f"{Path(path).name} has no gatescope metadata: it is not a native gatescope file")
    return from_parts(tensors, metadata[KEY], Path(path).name)  # type: ignore[index]


def from_parts(tensors: dict[str, np.ndarray], meta_json: str, name: str) -> Network:
    try:
        meta = json.loads(meta_json)
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        if meta.get("version") != VERSION:
            raise ValueError(f"format version {meta.get('version')!r}, this gatescope reads {VERSION}")
        spec = Spec.from_dict(meta["spec"])
    except (ValueError, KeyError, TypeError) as e:
        raise FormatError(f"{name}: the gatescope metadata is malformed ({e})") from None
    dtypes = {a.dtype for a in tensors.values()}
    dtype = dtypes.pop().type if len(dtypes) == 1 else np.float32
    try:
        return Network(spec, tensors, dtype if issubclass(dtype, np.floating) else np.float32)
    except (ValueError, TypeError) as e:
        raise FormatError(f"{name}: {e}") from None
