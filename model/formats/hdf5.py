"""HDF5 files (Keras .weights.h5, .h5, the weights inside .keras) may only be read from themselves.

HDF5 can point outside a file in three ways, and a file handed to gatescope by someone else must
never make it read (and then serve back as weights) a file on the server's disk:

- external storage: a dataset whose bytes live in other files (``Dataset.external``);
- virtual datasets: a dataset mapped from datasets in other files (``Dataset.is_virtual``);
- external links: a link that opens an object in another file (``h5py.ExternalLink``).

``check_self_contained`` walks every link of a file without following any external one and refuses
all three, plus soft links (Keras never writes them), a file whose datasets declare more bytes
than ``LIMITS.max_bytes`` (formats/common.py), and a dataset that declares data it does not store
(uncompressed, with less storage than its size: reading it would allocate its fill value): a 6 KB file
can declare gigabytes it never writes. Nothing is read from a dataset here: only its metadata.
"""

from __future__ import annotations

from typing import Any

from .common import LIMITS, FormatError

#: Deeper than any Keras file nests its groups.
MAX_DEPTH = 32


def check_self_contained(f: Any, name: str, max_bytes: int | None = None) -> None:
    """Refuse (FormatError) an HDF5 file that refers outside itself or declares too much data
    (more than ``max_bytes``, by default ``LIMITS.max_bytes``)."""
    import h5py

    max_bytes = LIMITS.max_bytes if max_bytes is None else max_bytes
    seen: set[Any] = set()
    total = 0

    def walk(group: Any, where: str, depth: int) -> None:
        nonlocal total
        if depth > MAX_DEPTH:
            raise FormatError(f"{name}: its groups nest deeper than {MAX_DEPTH} levels at {where}")
        for key in group:  # the link names: listing them follows nothing
            path = f"{where}/{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise FormatError(
                    f"{name}: {path} is an external link to {link.filename!r}; gatescope reads only what is in the file"
                )
            if isinstance(link, h5py.SoftLink):
                raise FormatError(f"{name}: {path} is a soft link to {link.path!r}; Keras files hold none")
            obj = group[key]  # a hard link: an object inside this file
            if obj.id in seen:
                continue  # the same object under a second name (or a cycle)
            seen.add(obj.id)
            if isinstance(obj, h5py.Group):
                walk(obj, path, depth + 1)
            elif isinstance(obj, h5py.Dataset):
                total += _declared(obj, path, name)
                if total > max_bytes:
                    raise FormatError(
                        f"{name}: its datasets declare {total / 2**20:.0f} MB or more; gatescope reads at most "
                        f"{max_bytes / 2**20:.0f} MB of weights"
                    )

    walk(f, "", 0)


def _declared(ds: Any, path: str, name: str) -> int:
    """The bytes a dataset declares, once it is known to live in this file."""
    if ds.is_virtual:
        raise FormatError(f"{name}: {path} is a virtual dataset mapped from other files; gatescope reads only the file")
    if ds.external:
        files = ", ".join(repr(e[0]) for e in ds.external[:3])
        raise FormatError(f"{name}: {path} keeps its data in external storage ({files}); gatescope reads only the file")
    declared = int(ds.size or 0) * ds.dtype.itemsize
    stored = ds.id.get_storage_size()
    if stored < declared and not ds.compression and not ds._filters:  # nothing to inflate: the data is not there
        raise FormatError(
            f"{name}: {path} declares {_size(declared)} of data but stores {_size(stored)}; "
            "gatescope reads only weights a file holds"
        )
    return declared


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 1 << 20 else f"{n:,} bytes"
