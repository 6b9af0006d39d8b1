"""Vocabulary files: what turns a weight file into a text model. Each is read into the Spec fields
``vocab``, ``tokenizer``, ``unk``, ``tokenizer_options`` and ``tokenizer_json``:

    ["<unk>", "a", "b", ...]                     a list: the token of id k at index k
    {"<unk>": 0, "the": 1, ...}                  {token: id}, as most training scripts save it
                                                 (ids exactly 0..V-1, each once)
    {"tokens": [...] or {...}, "tokenizer": "char" | "word", "unk": "<unk>",
     "lowercase": true, "split_punct": true, "eol": "<eos>"}      the object form, with word options
    a Hugging Face tokenizer.json                ({"model": {"type": "BPE", ...}, ...}), read by ``tokenizers``

A bare list or map is a character vocabulary when every entry is one character (or a ``<special>``),
else a word vocabulary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import FormatError
from ..tokenizer import WORD_OPTIONS, word_options

#: Keys of the object form besides the word options.
KEYS = ("tokens", "tokenizer", "unk")


def read_vocab(path: str | Path) -> dict[str, Any]:
    """A vocabulary file (any form above) as Spec fields, or a FormatError naming the file and the problem."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError(f"vocabulary {path.name} is not a JSON file ({e})") from None
    return parse_vocab(data, path.name)


def is_tokenizer_json(data: Any) -> bool:
    """Whether a JSON value is a Hugging Face tokenizer.json (its "model" says which tokenizer)."""
    return isinstance(data, dict) and isinstance(data.get("model"), dict) and "tokens" not in data


def parse_vocab(data: Any, name: str = "vocabulary") -> dict[str, Any]:
    """Spec fields (vocab, tokenizer, unk, tokenizer_options, tokenizer_json) from a vocabulary's JSON."""
    if is_tokenizer_json(data):
        from ..tokenizer_hf import HFTokenizer

        try:
            tok = HFTokenizer.from_json(json.dumps(data))
        except FormatError as e:
            raise FormatError(f"{name}: {e}") from None
        return {"vocab": tok.vocab, "tokenizer": "hf", "unk": tok.unk, "tokenizer_json": tok.to_json()}
    if isinstance(data, list):
        data = {"tokens": data}
    elif isinstance(data, dict) and "tokens" not in data:
        data = {"tokens": data}  # {token: id}
    if not isinstance(data, dict):
        raise FormatError(f"{name} must be a JSON list of tokens, a {{token: id}} object or an object with 'tokens'")
    extra = sorted(set(data) - set(KEYS) - set(WORD_OPTIONS))
    if extra:
        raise FormatError(
            f"{name}: unknown key {', '.join(map(repr, extra))}; a vocabulary object takes "
            f"{', '.join(KEYS + tuple(WORD_OPTIONS))}"
        )
    tokens = data["tokens"]
    if isinstance(tokens, dict):
        tokens = from_index(tokens, name)
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise FormatError(f"{name} must list at least one token, all strings")
    plain = [t for t in tokens if not (t.startswith("<") and t.endswith(">") and len(t) > 2)]
    options = {k: data[k] for k in WORD_OPTIONS if k in data}
    kind = data.get("tokenizer") or ("word" if options or not all(len(t) == 1 for t in plain) else "char")
    if kind not in ("char", "word"):
        raise FormatError(f"{name}: unknown tokenizer {kind!r}, expected 'char' or 'word' (or give a tokenizer.json)")
    if kind == "char" and options:
        raise FormatError(f"{name}: {', '.join(options)} are options of the word tokenizer, not of 'char'")
    unk = data["unk"] if "unk" in data else next((u for u in ("<unk>", "[UNK]", "<UNK>") if u in tokens), "<unk>")
    if unk is not None and not isinstance(unk, str):
        raise FormatError(f"{name}: unk must be a token (a string) or null, got {unk!r}")
    out: dict[str, Any] = {"vocab": tokens, "tokenizer": kind, "unk": unk}
    if kind == "word" and options:
        out["tokenizer_options"] = {k: v for k, v in word_options(options, name).items() if v != WORD_OPTIONS[k]}
        eol = options.get("eol")
        if eol is not None and eol not in tokens:
            raise FormatError(f"{name}: the end-of-line token {eol!r} (eol) is not in the vocabulary")
    return out


def from_index(index: dict[Any, Any], name: str) -> list[str]:
    """A {token: id} map as the token list, refusing ids that are not exactly 0..V-1 each once (named)."""
    bad = [(t, i) for t, i in index.items() if type(i) is not int]
    if bad:
        shown = ", ".join(f"{t!r}: {i!r}" for t, i in bad[:5])
        raise FormatError(f"{name}: a {{token: id}} vocabulary needs integer ids; not integers: {shown}")
    V = len(index)
    by_id: dict[int, list[str]] = {}
    for t, i in index.items():
        by_id.setdefault(i, []).append(t)
    twice = {i: ts for i, ts in by_id.items() if len(ts) > 1}
    if twice:
        shown = "; ".join(f"id {i}: {', '.join(map(repr, ts[:3]))}" for i, ts in sorted(twice.items())[:5])
        raise FormatError(f"{name}: ids given to more than one token ({shown}); each id must name one token")
    outside = sorted(i for i in by_id if not 0 <= i < V)
    if outside:
        gaps = [i for i in range(V) if i not in by_id]
        raise FormatError(
            f"{name}: the {V} ids must be exactly 0..{V - 1}; ids {outside[:10]} are outside it and "
            f"{gaps[:10]} are missing"
        )
    return [by_id[i][0] for i in range(V)]


def find_vocab(path: Path) -> Path | None:
    """A vocabulary beside a weight file: ``<stem>.vocab.json``, ``<stem>.tokenizer.json``, ``tokenizer.json``
    (before ``vocab.json``: a Hugging Face folder's vocab.json is only its BPE's pieces) or ``vocab.json``."""
    stem = path.name.split(".")[0]
    names = (f"{stem}.vocab.json", f"{stem}.tokenizer.json", "tokenizer.json", "vocab.json")
    for cand in (path.with_name(n) for n in names):
        if cand.is_file():
            return cand
    return None
