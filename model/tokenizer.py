"""Text to token ids, by characters or by whitespace-separated words, from a fixed vocabulary.

A token that is not in the vocabulary maps to the vocabulary's unknown entry
(``unk``, by default ``"<unk>"``) and its position is reported; a vocabulary
without an unknown entry refuses such text with a message that names the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import FormatError, UnknownTokenError

TOKENIZERS = ("char", "word")


@dataclass
class Encoded:
    ids: np.ndarray  # (T,) int64
    tokens: list[str]
    unknown: list[int]  # positions that mapped to the unknown entry


@dataclass
class Tokenizer:
    """Splits text into tokens (``kind``: characters, or whitespace-separated words) and maps them to
    their index in ``vocab``. A token outside the vocabulary maps to ``unk`` and its position is
    reported; when the vocabulary has no ``unk`` entry, ``encode`` raises ``UnknownTokenError``."""

    vocab: list[str]
    kind: str = "char"  # "char" | "word"
    unk: str | None = "<unk>"
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in TOKENIZERS:
            raise FormatError(f"unknown tokenizer {self.kind!r}: expected 'char' or 'word'")
        if not self.vocab:
            raise FormatError("the vocabulary is empty")
        self._index = {}
        for k, tok in enumerate(self.vocab):
            if not isinstance(tok, str):
                raise FormatError(f"vocabulary entry {k} is {tok!r}, not a string")
            self._index.setdefault(tok, k)
        if self.unk is not None and self.unk not in self._index:
            self.unk = None

    def split(self, text: str) -> list[str]:
        """The tokens of ``text``: its characters, or its whitespace-separated words."""
        return list(text) if self.kind == "char" else text.split()

    def join(self, tokens: list[str]) -> str:
        """Text that ``split`` turns back into ``tokens``."""
        return "".join(tokens) if self.kind == "char" else " ".join(tokens)

    def encode(self, text: str) -> Encoded:
        """Token ids for ``text``; unknown tokens map to ``unk`` and are listed."""
        tokens = self.split(text)
        index = self._index
        unk_id = index.get(self.unk) if self.unk is not None else None
        ids = np.empty(len(tokens), np.int64)
        unknown = []
        for t, tok in enumerate(tokens):
            k = index.get(tok)
            if k is None:
                unknown.append(t)
                k = -1 if unk_id is None else unk_id
            ids[t] = k
        if unknown and unk_id is None:
            raise UnknownTokenError([tokens[p] for p in unknown], unknown)
        return Encoded(ids, tokens, unknown)
