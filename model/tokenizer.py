"""Text to token ids from a fixed vocabulary: by characters, by words (with the options the common
training scripts use), or through a Hugging Face ``tokenizer.json`` (model/tokenizer_hf.py).

Words: the text is split on whitespace, after these options (``Spec.tokenizer_options``):

    lowercase     the text is lowercased first
    split_punct   punctuation is split off as tokens of its own: "sat." -> "sat", "."  (regex ``\\w+|[^\\w\\s]``)
    strip_punct   punctuation is removed (Keras' ``lower_and_strip_punctuation`` set)
    eol           a token (e.g. "<eos>") appended to every line, so line ends are tokens

What the common scripts do by default, and the options that match them:
- PyTorch examples/word_language_model/data.py: ``line.split() + ['<eos>']`` for every line of the
  file, case kept, punctuation kept in the words (its corpus, WikiText-2, is pre-tokenized):
  ``{"eol": "<eos>"}``.
- torchtext ``get_tokenizer("basic_english")``: lowercase, then . , ( ) ! ? ' split off as tokens
  (and " ; : removed): ``{"lowercase": true, "split_punct": true}`` (which also splits ; : " off).
- Keras ``TextVectorization``: ``standardize="lower_and_strip_punctuation"``, ``split="whitespace"``,
  vocabulary ``["", "[UNK]", ...]`` (0 the padding, 1 the unknown entry): ``{"lowercase": true,
  "strip_punct": true}`` with ``"unk": "[UNK]"``.

A token that is not in the vocabulary maps to the vocabulary's unknown entry (``unk``, by default
``"<unk>"``) and its position is reported; a vocabulary without an unknown entry refuses such text
with a message that names the tokens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .errors import FormatError, UnknownTokenError

TOKENIZERS = ("char", "word", "hf")
#: The word tokenizer's options and their defaults (plain whitespace words, case kept, no line ends).
WORD_OPTIONS: dict[str, Any] = {"lowercase": False, "split_punct": False, "strip_punct": False, "eol": None}
#: A word or a single punctuation mark (``split_punct``).
WORD_OR_PUNCT = re.compile(r"\w+|[^\w\s]")
#: Punctuation Keras' TextVectorization strips (its ``lower_and_strip_punctuation``).
KERAS_PUNCT = re.compile(r"[!\"#$%&()\*\+,\-./:;<=>?@\[\\\]^_`{|}~']")


@dataclass
class Encoded:
    """A text's tokens and their ids; ``display``: the tokens as text where they are not (subword pieces)."""

    ids: np.ndarray  # (T,) int64
    tokens: list[str]
    unknown: list[int]  # positions that mapped to the unknown entry
    display: list[str] | None = None  # per token, the text it stands for (None: the tokens are their text)
    missing: list[tuple[str, int]] = field(default_factory=list)  # (text, position) no token can stand for

    def __len__(self) -> int:
        return len(self.tokens)

    def tail(self, k: int, end: int | None = None) -> Encoded:
        """The tokens from position k on (to ``end``), positions counted from k."""
        end = len(self.tokens) if end is None else end
        display = None if self.display is None else self.display[k:end]
        unknown = [p - k for p in self.unknown if k <= p < end]
        missing = [(m, p - k) for m, p in self.missing if k <= p < end]
        ids, tokens = self.ids[k:end], self.tokens[k:end]
        return replace(self, ids=ids, tokens=tokens, unknown=unknown, display=display, missing=missing)

    def check(self) -> Encoded:
        """Itself, or UnknownTokenError when it holds text the vocabulary cannot read (no unknown entry)."""
        if self.missing:
            raise UnknownTokenError([m for m, _ in self.missing], [p for _, p in self.missing])
        return self


def word_options(options: dict[str, Any] | None, where: str = "the tokenizer options") -> dict[str, Any]:
    """The word tokenizer's options with their defaults, or a FormatError naming an unknown or ill-typed one."""
    options = dict(options or {})
    extra = sorted(set(options) - set(WORD_OPTIONS))
    if extra:
        raise FormatError(
            f"{where}: unknown option {', '.join(map(repr, extra))}; the word tokenizer takes {', '.join(WORD_OPTIONS)}"
        )
    for name in ("lowercase", "split_punct", "strip_punct"):
        if not isinstance(options.get(name, False), bool):
            raise FormatError(f"{where}: {name} must be true or false, got {options[name]!r}")
    eol = options.get("eol")
    if eol is not None and (not isinstance(eol, str) or not eol or any(c.isspace() for c in eol)):
        raise FormatError(f'{where}: eol must be a token without whitespace, such as "<eos>", got {eol!r}')
    return WORD_OPTIONS | options


@dataclass
class Tokenizer:
    """Splits text into tokens (``kind``: characters, or words with ``options``) and maps them to
    their index in ``vocab``. A token outside the vocabulary maps to ``unk`` and its position is
    reported; when the vocabulary has no ``unk`` entry, ``encode`` raises ``UnknownTokenError``."""

    vocab: list[str]
    kind: str = "char"  # "char" | "word" ("hf": tokenizer_hf.HFTokenizer)
    unk: str | None = "<unk>"
    options: dict[str, Any] | None = None  # the word tokenizer's (WORD_OPTIONS)
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("char", "word"):
            raise FormatError(f"unknown tokenizer {self.kind!r}: expected 'char', 'word' or 'hf'")
        if not self.vocab:
            raise FormatError("the vocabulary is empty")
        if self.kind == "char" and self.options:
            raise FormatError(f"the char tokenizer takes no options, got {', '.join(self.options)}")
        self.options = word_options(self.options) if self.kind == "word" else None
        self._index = {}
        for k, tok in enumerate(self.vocab):
            if not isinstance(tok, str):
                raise FormatError(f"vocabulary entry {k} is {tok!r}, not a string")
            self._index.setdefault(tok, k)
        if self.unk is not None and self.unk not in self._index:
            self.unk = None
        eol = (self.options or {}).get("eol")
        if eol is not None and eol not in self._index:
            raise FormatError(f"the end-of-line token {eol!r} is not in the vocabulary")

    def split(self, text: str) -> list[str]:
        """The tokens of ``text``: its characters, or its words (with the options: lowercased,
        punctuation split off or stripped, ``eol`` after every line)."""
        if self.kind == "char":
            return list(text)
        opt = self.options or WORD_OPTIONS
        if opt["lowercase"]:
            text = text.lower()
        if opt["strip_punct"]:
            text = KERAS_PUNCT.sub("", text)
        words = WORD_OR_PUNCT.findall if opt["split_punct"] else str.split
        eol = opt["eol"]
        if eol is None:
            return words(text)
        lines = text.split("\n")
        if lines[-1] == "":  # a text that ends with a newline has no line after it (as a file's lines)
            lines.pop()
        return [tok for line in lines for tok in [*words(line), eol]]

    @property
    def shows_pieces(self) -> bool:
        """Whether the tokens are pieces that differ from their text (then traces carry a ``display``)."""
        return False

    def vocab_display(self) -> list[str] | None:
        """Every vocabulary entry as the text it stands for, or None when the entries are their text."""
        return None

    def describe(self) -> dict[str, Any]:
        """What a card says about the tokenizer: its kind and options."""
        return {"tokenizer": self.kind, "tokenizer_options": self.options}

    def encode(self, text: str, check: bool = True) -> Encoded:
        """Token ids for ``text``; unknown tokens map to ``unk`` and are listed. Without an unknown
        entry, unknown tokens raise UnknownTokenError (``check=False``: listed in ``missing``)."""
        return self.lookup(self.split(text), check)

    def lookup(self, tokens: list[str], check: bool = True) -> Encoded:
        """Tokens already split (``split``'s) as an encoding: each one's id, unknown ones as ``encode``."""
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
        missing = [(tokens[p], p) for p in unknown] if unk_id is None else []
        enc = Encoded(ids, tokens, unknown, missing=missing)
        return enc.check() if check else enc


def make_tokenizer(
    vocab: list[str],
    kind: str | None,
    unk: str | None,
    options: dict[str, Any] | None = None,
    tokenizer_json: str | None = None,
) -> Tokenizer:
    """The tokenizer a Spec describes (``tokenizer``, ``tokenizer_options``, ``tokenizer_json``)."""
    if kind == "hf":
        from .tokenizer_hf import HFTokenizer

        if not tokenizer_json:
            raise FormatError("an 'hf' tokenizer needs its tokenizer.json (tokenizer_json)")
        return HFTokenizer.from_json(tokenizer_json, vocab)
    if tokenizer_json:
        raise FormatError(f"a tokenizer.json is given but the tokenizer is {kind!r}, not 'hf'")
    return Tokenizer(vocab, kind or "char", unk, options)
