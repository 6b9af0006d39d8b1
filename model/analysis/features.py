"""Features of a text, one number per token, to look for the units that track them (model/analysis/probes.py).

Built-in features, for any text (``GENERIC``), for Python source (``PYTHON``, from code.py) and for Dyck-1
brackets (``DYCK``, from tasks.py); a regular expression (1 on the tokens inside a match); labels a person
supplies (a number per token). ``features_for(net)`` names the built-ins a model gets.

A feature is defined on the model's tokens. For a character model each token is a character and every
definition below is the character's. For word and subword tokenizers each token has a text: a word
tokenizer's word (its end-of-line token counts as a newline), a subword piece's display text (" the").
A token's predicates are its text's: it holds a digit, an uppercase letter, it is all whitespace, all
punctuation; "a new word" is a token whose text starts with whitespace or follows one that ends with it
(every token of a word tokenizer starts a word); "a new line" follows a token holding a newline; bracket
depth counts the brackets of each token's text. The Python features are computed over the document's
text (its tokens' texts joined, " " between words) and a token takes the value at its first character.

Documents: over an index every counter and depth restarts at each document's first token (the network's
state is reset there too).

Karpathy, Johnson & Fei-Fei (2015, "Visualizing and Understanding Recurrent Networks") found cells that track
line position, quotes and bracket depth; Suzgun et al. (2019) the counter of a Dyck language.
"""

from __future__ import annotations

import re
import subprocess
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from ..tasks import dyck_depth
from .code import CLOSE, OPEN, code_features

if TYPE_CHECKING:
    from ..network import Network
    from ..trace import Trace

#: The features every text model gets, with what each is (a token's value).
GENERIC: dict[str, str] = {
    "position_in_word": "tokens since the word began (0 on a word's first token; whitespace starts a word)",
    "position_in_line": "tokens since the line began (0 after a newline; a newline sits after its line's last token)",
    "after_newline": "1 on the token right after a newline",
    "digit": "1 on a token holding a digit",
    "uppercase": "1 on a token holding an uppercase letter",
    "whitespace": "1 on a token that is all whitespace",
    "punctuation": "1 on a token that is all punctuation or symbols",
    "bracket_depth": "how many of ( [ { are open after the token (a closer with no opener leaves it at 0)",
}
#: Python source's features (code.py), for models of code or any text on request.
PYTHON: dict[str, str] = {
    "in_string": "1 inside a Python string literal (its prefix and quotes included)",
    "in_comment": "1 from a # outside strings to the end of its line",
    "indent": "the width of the line's leading whitespace (a tab to the next multiple of 8)",
}
#: On a Python model bracket_depth counts only the brackets outside strings and comments.
PYTHON_BRACKETS = "how many of ( [ { are open after the token, outside strings and comments"
#: Dyck-1's feature (tasks.py).
DYCK: dict[str, str] = {"depth": "the nesting depth after the symbol: ( adds one, ) takes one, $ leaves it"}
#: Every built-in name.
NAMES = (*GENERIC, *PYTHON, *DYCK)

#: The longest pattern a regex feature takes.
MAX_PATTERN = 500
#: Seconds a regex may run over a text before it is stopped (it runs in a child process: a pattern that
#: backtracks catastrophically, like (a+)+b, is killed at this limit and refused).
REGEX_SECONDS = 5.0


def task_of(net: Network) -> str | None:
    """The task a model was trained on, as its metadata says (bundled models: "code", "dyck", ...)."""
    meta = net.spec.meta
    training = meta.get("training")
    task = training.get("task") if isinstance(training, dict) else meta.get("task")
    return task if isinstance(task, str) else None


def features_for(net: Network) -> list[str]:
    """The built-in features of a model: the generic ones for any text model, the Python ones for a model
    of code, depth for dyck; none for a vector model."""
    if net.tokenizer is None:
        return []
    task = task_of(net)
    names = list(GENERIC)
    if task == "code":
        names += list(PYTHON)
    if task == "dyck":
        names += list(DYCK)
    return names


def describe(net: Network) -> list[dict[str, str]]:
    """``features_for(net)`` with a one-line description of each."""
    python = task_of(net) == "code"
    text = {**GENERIC, **PYTHON, **DYCK} | ({"bracket_depth": PYTHON_BRACKETS} if python else {})
    return [{"name": n, "description": text[n]} for n in features_for(net)]


@dataclass
class Tokens:
    """A run of tokens to compute features over: each one's id into ``texts`` (the text each id stands
    for), where the documents start (``starts`` (N+1,), ``starts[-1]`` = the number of tokens), and what
    joins two tokens into text (``sep``: "" for characters and subword pieces, " " between words)."""

    ids: np.ndarray  # (S,) int
    texts: list[str]
    starts: np.ndarray  # (N+1,) int64
    sep: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, net: Network, tokens: Sequence[str], display: Sequence[str] | None = None) -> Tokens:
        """One document's tokens (a trace's ``tokens`` and ``display``) as the model reads them."""
        shown = list(display if display is not None else tokens)
        seen: dict[str, int] = {}  # each distinct token's id, in order of first appearance (a dict, not a sort)
        ids = np.fromiter((seen.setdefault(str(t), len(seen)) for t in shown), np.int64, len(shown))  # (S,)
        return cls(ids, _as_text(net, list(seen)), np.array([0, len(shown)]), _sep(net))

    @classmethod
    def of_trace(cls, net: Network, tr: Trace) -> Tokens:
        return cls.of(net, tr.tokens, tr.display)

    @classmethod
    def of_index(cls, net: Network, index: Any) -> Tokens:
        """Every step of an index (model/analysis/store.py's ``Index``): its token ids and vocabulary."""
        if index.vocab is None:
            raise InputError("this index holds vector inputs: text features need a text model's index")
        ids = np.asarray(index.ids(0, index.steps))
        return cls(ids, _as_text(net, list(index.vocab)), np.asarray(index.doc_starts, np.int64), _sep(net))

    def doc_text(self, n: int) -> tuple[str, np.ndarray]:
        """Document n's text and the offset of each of its tokens' first character in it."""
        texts = np.asarray(self.texts, dtype=object)[self.ids[self.starts[n] : self.starts[n + 1]]]  # (T,)
        lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts)) + len(self.sep)
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]])  # (T,)
        return self.sep.join(texts), first


def _sep(net: Network) -> str:
    return " " if getattr(net.tokenizer, "kind", "char") == "word" else ""


def _as_text(net: Network, texts: list[str]) -> list[str]:
    """Token texts, a word tokenizer's end-of-line token read as a newline."""
    eol = (getattr(net.tokenizer, "options", None) or {}).get("eol")
    return ["\n" if eol is not None and t == eol else t for t in texts]


def _table(texts: list[str], test: Any) -> np.ndarray:
    return np.array([bool(test(t)) for t in texts], bool)


def _punct(t: str) -> bool:
    return bool(t.strip()) and all(unicodedata.category(c)[0] in "PS" for c in t if not c.isspace())


def _since(reset: np.ndarray) -> np.ndarray:
    """Steps since the last True of ``reset`` (0 where it is True), (S,) float64; reset[0] must be True.
    A running sum of +1 a step that drops back to 0 at each reset (one array: 10 M steps in ~0.1 s)."""
    at = np.flatnonzero(reset)  # (R,) the resets, at[0] == 0
    d = np.ones(len(reset), np.float64)  # (S,) the step from t-1 to t
    d[0] = 0.0
    d[at[1:]] = 1.0 - np.diff(at)  # back to 0 from the run before: -(at[j] - 1 - at[j-1])
    return np.cumsum(d, out=d)  # exact: integers below 2**53


def _doc_first(tokens: Tokens) -> np.ndarray:
    first = np.zeros(len(tokens), bool)  # (S,)
    first[tokens.starts[:-1][tokens.starts[:-1] < len(tokens)]] = True
    return first


def _depth(delta: np.ndarray, first: np.ndarray) -> np.ndarray:
    """A walk of +1/-1 steps clamped at 0 from below, restarting at each document: S_t - min(0, min_{s<=t} S_s)
    within the document, (S,) float64."""
    doc = np.cumsum(first) - 1  # (S,) document of each step
    walk = np.cumsum(delta)  # (S,)
    base = (walk - delta)[first]  # (N,) the walk before each document's first step
    s = walk - base[doc]  # (S,) the walk within the document
    big = 2 * len(delta) + 2  # each document's values sit below every earlier document's
    low = np.minimum.accumulate(s - doc * big) + doc * big  # (S,) the running minimum within the document
    return (s - np.minimum(low, 0)).astype(np.float64)


def generic(name: str, tokens: Tokens) -> np.ndarray:
    """A ``GENERIC`` feature of ``tokens``, (S,) float64."""
    texts, ids = tokens.texts, tokens.ids
    first = _doc_first(tokens)  # (S,)
    if name == "digit":
        return _table(texts, lambda t: any(c.isdigit() for c in t))[ids].astype(np.float64)
    if name == "uppercase":
        return _table(texts, lambda t: any(c.isupper() for c in t))[ids].astype(np.float64)
    if name == "whitespace":
        return _table(texts, lambda t: t != "" and t.isspace())[ids].astype(np.float64)
    if name == "punctuation":
        return _table(texts, _punct)[ids].astype(np.float64)
    newline = _table(texts, lambda t: "\n" in t)[ids]  # (S,)
    after = np.concatenate([[False], newline[:-1]]) & ~first  # (S,)
    if name == "after_newline":
        return after.astype(np.float64)
    if name == "position_in_line":
        return _since(first | after)
    if name == "position_in_word":
        starts = _table(texts, lambda t: t[:1].isspace())[ids]  # (S,)
        ends = _table(texts, lambda t: t[-1:].isspace())[ids]  # (S,)
        new = first | starts | np.concatenate([[False], ends[:-1]]) | (tokens.sep != "")
        return _since(new)
    if name == "bracket_depth":
        opens = np.array([sum(t.count(b) for b in OPEN) for t in texts], np.int64)  # (V,)
        closes = np.array([sum(t.count(b) for b in CLOSE) for t in texts], np.int64)  # (V,)
        return _depth((opens - closes)[ids], first)
    raise InputError(f"unknown feature {name!r}: the built-in ones are {', '.join(NAMES)}")


def _per_document(tokens: Tokens, fn: Any) -> np.ndarray:
    """``fn(text) -> (len(text),)`` over each document's text, taken at each token's first character."""
    out = np.zeros(len(tokens))  # (S,)
    for n in range(len(tokens.starts) - 1):
        a, b = int(tokens.starts[n]), int(tokens.starts[n + 1])
        if b <= a:
            continue
        text, first = tokens.doc_text(n)
        per_char = np.asarray(fn(text), np.float64)  # (len(text),)
        at = np.minimum(first, max(len(text) - 1, 0))  # an empty token takes its neighbour's character
        out[a:b] = per_char[at] if len(text) else 0.0
    return out


def values(name: str, tokens: Tokens, python: bool = False) -> np.ndarray:
    """The built-in feature ``name`` at every token, (S,) float64. ``python``: bracket_depth counts only the
    brackets outside Python strings and comments (code.py's)."""
    if name in PYTHON or (python and name == "bracket_depth"):
        return _per_document(tokens, lambda text: code_features(text)[name])
    if name in DYCK:
        return _per_document(tokens, dyck_depth)
    return generic(name, tokens)


def check_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, or InputError naming what is wrong with it."""
    if not isinstance(pattern, str) or not pattern:
        raise InputError("the regular expression is empty")
    if len(pattern) > MAX_PATTERN:
        raise InputError(f"the regular expression has {len(pattern)} characters; at most {MAX_PATTERN} are taken")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise InputError(f"the regular expression {pattern!r} does not compile: {e}") from None


#: The child that runs a pattern: reads the pattern's length, the pattern, the documents' lengths and the
#: text on stdin; writes a byte per character (1: inside a match) on stdout, matching within each document.
_MATCHER = """
import re, sys
data = sys.stdin.buffer.read().decode("utf-8")
head, _, rest = data.partition("\\n")
n, _, lens = head.partition(" ")
pattern, rest = rest[: int(n)], rest[int(n) :]
out, at = bytearray(len(rest)), 0
rx = re.compile(pattern)
for size in map(int, lens.split()):
    for m in rx.finditer(rest, at, at + size):
        out[m.start() : m.end()] = b"\\x01" * (m.end() - m.start())
    at += size
sys.stdout.buffer.write(bytes(out))
"""


def match_chars(pattern: str, docs: Sequence[str], seconds: float = REGEX_SECONDS) -> list[np.ndarray]:
    """For each document, a (len,) bool array: True on the characters inside a match of ``pattern``
    (re.finditer within the document). It runs in a child process stopped after ``seconds``: InputError then."""
    check_pattern(pattern)
    text = "".join(docs)
    header = f"{len(pattern)} {' '.join(str(len(d)) for d in docs)}\n"
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _MATCHER],
            input=(header + pattern + text).encode("utf-8", "surrogatepass"),
            capture_output=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        raise InputError(
            f"the regular expression {pattern!r} ran over {seconds:g} s on {len(text):,} characters and was "
            "stopped: it may backtrack catastrophically (nested repeats like (a+)+); simplify it"
        ) from None
    if done.returncode != 0:
        raise InputError(f"the regular expression {pattern!r} failed: {done.stderr.decode(errors='replace')[-300:]}")
    mask = np.frombuffer(done.stdout, np.uint8).astype(bool)  # (sum len,)
    ends = np.cumsum([len(d) for d in docs])
    return np.split(mask, ends[:-1]) if len(docs) else []


def regex_values(pattern: str, tokens: Tokens, seconds: float = REGEX_SECONDS) -> np.ndarray:
    """1 on every token with a character inside a match of ``pattern``, else 0, (S,) float64. Matches never
    cross a document's end."""
    docs, firsts = [], []
    for n in range(len(tokens.starts) - 1):
        text, first = tokens.doc_text(n)
        docs.append(text)
        firsts.append(first)
    masks = match_chars(pattern, docs, seconds)
    out = np.zeros(len(tokens))  # (S,)
    for n, (text, first, mask) in enumerate(zip(docs, firsts, masks)):
        a = int(tokens.starts[n])
        if not len(first):
            continue
        lengths = np.diff(np.append(first, len(text) + len(tokens.sep))) - len(tokens.sep)  # (T,) characters
        inside = np.add.reduceat(np.append(mask, False).astype(np.int64), np.minimum(first, len(text)))  # (T,)
        out[a : a + len(first)] = (inside > 0) & (lengths > 0)
    return out


def label_values(labels: Any, steps: int) -> np.ndarray:
    """Labels a person gave, one number per token, as (S,) float64; InputError naming both lengths, or the
    first entry that is not a finite number."""
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise InputError(f"labels must be a list of numbers, one per token, not {type(labels).__name__}")
    if len(labels) != steps:
        raise InputError(f"the labels have {len(labels)} numbers but the text has {steps} tokens: give one per token")
    try:
        y = np.asarray(labels, np.float64)
    except (TypeError, ValueError):
        bad = next((k for k, v in enumerate(labels) if not isinstance(v, (int, float)) or isinstance(v, bool)), 0)
        raise InputError(f"labels[{bad}] is {labels[bad]!r}, not a number") from None
    if y.shape != (steps,):
        raise InputError(f"labels must be a flat list of {steps} numbers, got shape {y.shape}")
    if not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise InputError(f"labels[{bad}] is {y[bad]}: every label must be a finite number")
    return y
