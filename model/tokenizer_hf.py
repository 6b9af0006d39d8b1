"""A Hugging Face ``tokenizer.json`` (BPE, byte-level BPE, WordPiece, Unigram, WordLevel), read and run
by the ``tokenizers`` library itself: the ids are exactly ``tokenizers.Tokenizer.encode(text).ids``
(special tokens added as its post-processor says; truncation and padding switched off: a trace
reads the whole text).

Pieces are not text: byte-level BPE writes a space as ``Ġ`` and a newline as ``Ċ`` (GPT-2's
bytes-to-unicode table), SentencePiece-style models a word start as ``▁``, WordPiece a word's
continuation as ``##ing``. ``display`` turns each piece into the text it stands for, as the
tokenizer's own decoder would write it (" the", "\\n", "ing"): the page shows that, the trace keeps
the pieces. A piece that is part of a UTF-8 character (byte-level) shows its bytes (``\\xc3``).

Unknown text: pieces that are the model's unknown token are reported per position, as for the
other tokenizers; a model without an unknown token (a BPE trained without ``unk_token``) drops
characters it cannot read, and ``encode`` refuses them instead (UnknownTokenError).
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from .errors import FormatError, InputError
from .tokenizer import Encoded, Tokenizer

#: A byte-fallback piece: one raw byte.
BYTE_PIECE = re.compile(r"<0x([0-9A-Fa-f]{2})>")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (openai/gpt-2 encoder.py), which byte-level BPE pieces use."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


#: The inverse table: a byte-level piece's characters back to bytes.
UNICODE_TO_BYTES = {c: b for b, c in bytes_to_unicode().items()}


def _steps(part: dict[str, Any] | None) -> list[dict[str, Any]]:
    """A decoder or pre-tokenizer config as a flat list of steps (Sequences opened)."""
    if not isinstance(part, dict):
        return []
    inner = part.get("decoders") or part.get("pretokenizers")
    if part.get("type") == "Sequence" and isinstance(inner, list):
        return [s for p in inner for s in _steps(p)]
    return [part]


class HFTokenizer(Tokenizer):
    """A ``tokenizers.Tokenizer`` with gatescope's tokenizer interface (``encode``, ``split``, ``vocab``)."""

    def __init__(self, tok: Any, config: dict[str, Any], vocab: list[str] | None = None) -> None:
        self.kind, self.options, self._tok = "hf", None, tok
        tok.no_truncation()
        tok.no_padding()
        index: dict[str, int] = tok.get_vocab(with_added_tokens=True)
        V = tok.get_vocab_size(with_added_tokens=True)
        pieces: list[str | None] = [None] * V
        for piece, i in index.items():
            if 0 <= i < V:
                pieces[i] = piece
        gaps = [i for i, p in enumerate(pieces) if p is None]
        if gaps or len(index) != V:
            raise FormatError(f"the tokenizer.json's ids are not 0..{V - 1} (missing: {gaps[:10]})")
        self.vocab = [p for p in pieces if p is not None]
        if vocab is not None and vocab != self.vocab:
            raise FormatError("the stored vocabulary differs from the tokenizer.json's")
        self._index = index
        m = config.get("model") or {}
        self.model_type = str(m.get("type", "?"))
        unk = m.get("unk_token")
        if self.model_type == "Unigram" and isinstance(m.get("unk_id"), int):
            unk = self.vocab[m["unk_id"]] if 0 <= m["unk_id"] < V else None
        self.unk = unk if isinstance(unk, str) and unk in index else None
        self._unk_id = index[self.unk] if self.unk is not None else None
        special = {a.get("content") for a in config.get("added_tokens") or [] if a.get("special")}
        decoder = _steps(config.get("decoder"))
        pre = _steps(config.get("pre_tokenizer"))
        self.byte_level = any(s.get("type") == "ByteLevel" for s in decoder + pre)
        if not decoder:  # no decoder written: decode as the model's pieces say
            if self.byte_level:
                decoder = [{"type": "ByteLevel"}]
            elif self.model_type == "WordPiece":
                decoder = [{"type": "WordPiece", "prefix": m.get("continuing_subword_prefix") or "##"}]
        self._strip_first = any(_adds_first_space(s) for s in decoder)
        self._decoder = decoder
        self._alphabet = _alphabet(self.vocab, m)
        self._display = [p if p in special else _piece_text(p, decoder) for p in self.vocab]
        self._special = special

    def _unspellable(self, text: str, offsets: list[tuple[int, int]]) -> list[tuple[str, int]]:
        """The characters of ``text`` no piece can spell, each with the token position it is at (about:
        the library's offsets after a dropped character are shifted)."""
        normalizer = self._tok.normalizer
        seen = normalizer.normalize_str(text) if normalizer is not None else text
        bad = sorted({ch for ch in seen if not ch.isspace() and ch not in self._alphabet}, key=seen.index)
        starts = [a for a, _ in offsets]
        return [(ch, sum(a < text.find(ch) for a in starts)) for ch in bad]

    @classmethod
    def from_json(cls, text: str, vocab: list[str] | None = None) -> HFTokenizer:
        """A tokenizer from a tokenizer.json's text, or a FormatError saying why it does not read."""
        try:
            from tokenizers import Tokenizer as Backend
        except ImportError:
            raise FormatError("a tokenizer.json needs the tokenizers package: pip install tokenizers") from None
        try:
            config = json.loads(text)
            tok = Backend.from_str(text)
        except Exception as e:  # the library's own errors (a malformed or unsupported tokenizer.json)
            raise FormatError(f"not a tokenizer.json the tokenizers library reads ({str(e)[:200]})") from None
        if not isinstance(config, dict):
            raise FormatError("a tokenizer.json holds a JSON object")
        return cls(tok, config, vocab)

    def to_json(self) -> str:
        """The tokenizer.json text (what a native file stores)."""
        return str(self._tok.to_str())

    @property
    def shows_pieces(self) -> bool:
        return True

    def vocab_display(self) -> list[str]:
        return self._display

    def describe(self) -> dict[str, Any]:
        kind = f"{self.model_type} (byte-level)" if self.byte_level else self.model_type
        return {"tokenizer": "hf", "tokenizer_options": {"model": kind, "unk": self.unk}}

    def split(self, text: str) -> list[str]:
        return self.encode(text, check=False).tokens

    def display(self, ids: list[int], tokens: list[str] | None = None) -> list[str]:
        """The text each piece of a whole text stands for (the first without its word-start space, unless
        that is all it is); an unknown piece shows the text it replaced where the encoding keeps it."""
        shown = [self._display[i] for i in ids]
        if tokens is not None and self._unk_id is not None:
            for t, i in enumerate(ids):
                if i == self._unk_id and tokens[t] != self.unk:  # Unigram keeps the unknown text as the token
                    shown[t] = _piece_text(tokens[t], self._decoder)
        first = shown[0] if shown else ""
        if self._strip_first and len(first) > 1 and first[0] == " " and self.vocab[ids[0]] not in self._special:
            shown[0] = first[1:]
        return shown

    def lookup(self, tokens: list[str], check: bool = True) -> Encoded:
        """Pieces already split (``split``'s) as an encoding: each one's id, shown as in ``encode``."""
        enc = super().lookup(tokens, check)
        enc.display = self.display(enc.ids.tolist(), tokens) if not enc.missing else None
        return enc

    def encode(self, text: str, check: bool = True) -> Encoded:
        try:
            e = self._tok.encode(text)
        except Exception as err:  # e.g. a Unigram model without unk_id meeting an unknown character
            raise InputError(f"the tokenizer cannot read this text ({str(err)[:200]})") from None
        ids = list(e.ids)
        unknown = [t for t, i in enumerate(ids) if i == self._unk_id] if self._unk_id is not None else []
        missing: list[tuple[str, int]] = []
        if self._unk_id is None and not self.byte_level:  # characters it cannot spell were dropped: name them
            missing = self._unspellable(text, e.offsets)
        tokens = list(e.tokens)
        enc = Encoded(np.asarray(ids, np.int64), tokens, unknown, self.display(ids, tokens), missing)
        return enc.check() if check else enc


def _alphabet(vocab: list[str], model: dict[str, Any]) -> set[str]:
    """The characters a BPE or WordPiece model can spell: those with a piece of their own (BPE keeps every
    character of its training text as a piece, with its continuation prefix or word-end suffix if any)."""
    prefix, suffix = str(model.get("continuing_subword_prefix") or ""), str(model.get("end_of_word_suffix") or "")
    out = set()
    for p in vocab:
        if prefix and p.startswith(prefix):
            p = p[len(prefix) :]
        if suffix and p.endswith(suffix):
            p = p[: -len(suffix)]
        if len(p) == 1:
            out.add(p)
    return out


def _adds_first_space(step: dict[str, Any]) -> bool:
    """Whether a decoder step drops the space before the text's first word (WordPiece, prefixing Metaspace)."""
    if step.get("type") == "WordPiece":
        return True
    prefixed = step.get("prepend_scheme", "always") != "never" and step.get("add_prefix_space", True)
    return step.get("type") == "Metaspace" and bool(prefixed)


def _piece_text(piece: str, decoder: list[dict[str, Any]]) -> str:
    """One piece as the text it adds, through the decoder's steps (word starts keep their space)."""
    out = piece
    for step in decoder:
        kind = step.get("type")
        if kind == "Replace":
            pattern = (step.get("pattern") or {}).get("String")
            if isinstance(pattern, str) and pattern:
                out = out.replace(pattern, str(step.get("content", "")))
        elif kind == "ByteFallback":
            byte = BYTE_PIECE.fullmatch(out)
            if byte:
                out = bytes([int(byte.group(1), 16)]).decode("utf-8", "backslashreplace")
        elif kind == "ByteLevel":
            if all(c in UNICODE_TO_BYTES for c in out):
                out = bytes(UNICODE_TO_BYTES[c] for c in out).decode("utf-8", "backslashreplace")
        elif kind == "Metaspace":
            out = out.replace(str(step.get("replacement", "▁")), " ")
        elif kind == "WordPiece":
            prefix = str(step.get("prefix", "##"))
            out = out[len(prefix) :] if out.startswith(prefix) else " " + out
        elif kind == "BPEDecoder":
            suffix = str(step.get("suffix", "</w>"))
            out = out[: -len(suffix)] + " " if suffix and out.endswith(suffix) else out
    return out
