"""Tasks: the data a model is trained on, and the held-out test that scores it.

    task = get_task("dyck")                       # "code" | "dyck" | "recall"
    for b in task.batches(rng, batch=32, bptt=100): ...   # endless training batches (model/train.py)
    task.evaluate(net, seed=1234)                 # held-out metrics, computed with net.trace(text)

Every held-out number is a deterministic function of (task options, seed, network), so a test can
recompute it. Held-out sequences come from ``np.random.default_rng([seed, HELDOUT_STREAM])``, a
different stream from a trainer's ``default_rng(seed)``: the two never hand out the same sequences.

code    A character-level language model of Python source, as char-rnn on the Linux kernel (Karpathy, "The
        Unreasonable Effectiveness of Recurrent Neural Networks", 2015; Karpathy, Johnson & Fei-Fei, "Visualizing
        and Understanding Recurrent Networks", 2015). Corpus: the ``.py`` files of the running Python's standard
        library, less site-packages, the test suites (folders named ``test``, ``tests``, ``idle_test``), the
        build-specific ``_sysconfigdata*`` and files over 200 KB; UTF-8, universal newlines, tabs kept. A file
        is held out when ``zlib.crc32(its "/"-separated path relative to the stdlib) % 10 == 0``. Vocabulary:
        ``"<unk>"``, then every character occurring ``MIN_COUNT`` times in the training files, by code point.
        Training: the files in path order as one stream; held out: the first ``eval_chars`` of the held-out
        files, scored in bits per character.
dyck    Dyck-1 next-symbol prediction (Gers & Schmidhuber, "LSTM recurrent networks learn simple context-free
        and context-sensitive languages", IEEE TNN 2001; Suzgun et al., "LSTM Networks Can Perform Dynamic
        Counting", 2019). At depth 0 emit "$" (the end) with p_end, else "("; deeper, "(" with p_open, else
        ")"; lengths 2..max_len by rejection. A step is right when the symbols given probability > ``THRESHOLD``
        are exactly those allowed next; held out, half the strings are up to twice max_len and nest deeper.
recall  A long time lag (Hochreiter & Schmidhuber, "Long Short-Term Memory", Neural Computation 1997,
        experiment 2): m (one of "abcd"), 50-60 random digits, "?", m. Only the step whose input is "?" is
        scored; held out, right when the argmax there is m, also for gaps up to twice as long.
adding  The adding problem (ibid., experiment 4) and co2, a forecaster of the Mauna Loa weekly CO2 series:
co2     regression tasks on vector input, in model/regression.py.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import sysconfig
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .network import Network
from .tokenizer import Tokenizer
from .trace import Trace

#: Mixed into the held-out seed so held-out data never equals a trainer's default_rng(seed) stream.
HELDOUT_STREAM = 0x4E1D0


@dataclass
class Batch:
    x: np.ndarray  # (B, T) int64 input token ids, or (B, T, D) float input vectors (vector tasks)
    y: np.ndarray  # (B, T) int64 target ids (the next token), or (B, T, K) float targets (values head)
    mask: np.ndarray  # (B, T) float32: 1 where the loss counts, 0 at padding and unscored steps
    reset: bool  # True: start from a zero state; False: continue from the previous batch's final state


class Task:
    """A task: its vocabulary (or, for vectors, its input and output sizes), endless training batches
    and a held-out evaluation."""

    name: str
    vocab: list[str] | None  # None: the task's input is vectors of input_size
    tokenizer: str = "char"
    unk: str | None = None  # None: text with unknown characters is refused
    description: str
    examples: list[str]
    input_size: int | None = None  # D of a vector task's x_t
    output_size: int | None = None  # K of a vector task's values head
    head: str | None = None  # "values" for a regression task; None: next token
    head_at: str = "every"  # "last": only each sequence's last step is scored
    #: Which steps' next-token predictions training scored, in words, when not every step's (None: every step): a
    #: likelihood over the other steps says nothing about what the model learned.
    scored: str | None = None
    targets: dict[str, Any] | None = None  # a forecaster's meta: {"columns", "shift"} (model/heads.py targets)

    def export(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The weights a trained network is saved with (a task that standardised its data folds that in)."""
        return params

    def batches(self, rng: np.random.Generator, batch: int, bptt: int) -> Iterator[Batch]:
        """Endless training batches drawn with ``rng``."""
        raise NotImplementedError

    def evaluate(self, net: Network, seed: int = 1234) -> dict[str, float]:
        """Held-out metrics of ``net``, a deterministic function of (task, seed, net)."""
        raise NotImplementedError

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``, (T,) int64."""
        return Tokenizer(self.vocab or [], self.tokenizer, self.unk).encode(text).ids

    def _check_net(self, net: Network) -> None:
        if list(net.vocab or []) != self.vocab:
            raise InputError(
                f"the network's vocabulary does not match the {self.name!r} task's ({len(self.vocab or ())})"
            )


def _probs(tr: Trace) -> np.ndarray:
    if tr.probs is None:
        raise InputError("the network has no output head: it predicts nothing to score")
    return tr.probs  # (T, V)


def _heldout_rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, HELDOUT_STREAM])


def _pack(seqs: list[np.ndarray], scored: list[np.ndarray]) -> Batch:
    """Sequences of ids (x = s[:-1], y = s[1:]) padded to the longest, mask 0 at padding and unscored steps."""
    T = max(len(s) for s in seqs) - 1
    x = np.zeros((len(seqs), T), np.int64)  # (B, T)
    y = np.zeros((len(seqs), T), np.int64)  # (B, T)
    mask = np.zeros((len(seqs), T), np.float32)  # (B, T)
    for k, (s, m) in enumerate(zip(seqs, scored)):
        x[k, : len(s) - 1], y[k, : len(s) - 1], mask[k, : len(s) - 1] = s[:-1], s[1:], m
    return Batch(x, y, mask, reset=True)


# --------------------------------------------------------------------------------------------
# dyck: balanced brackets
# --------------------------------------------------------------------------------------------
#: A symbol is predicted possible when the network gives it more than this probability.
THRESHOLD = 0.1


def dyck_depth(text: str) -> np.ndarray:
    """The nesting depth after each character, (T,) int64: "(" adds one, ")" takes one, "$" leaves it."""
    bad = sorted(set(text) - set("()$"))
    if bad:
        raise InputError(f"not a Dyck-1 symbol: {', '.join(map(repr, bad))}")
    steps = np.array([{"(": 1, ")": -1, "$": 0}[ch] for ch in text], np.int64)
    return np.cumsum(steps)


def dyck_allowed(text: str) -> np.ndarray:
    """Which of ``DyckTask.vocab`` may follow each prefix, (T, 3) bool: "(" always, ")" iff depth > 0, "$" iff 0."""
    depth = dyck_depth(text)  # (T,)
    return np.stack([np.ones_like(depth, bool), depth > 0, depth == 0], axis=1)


class DyckTask(Task):
    name = "dyck"
    vocab = ["(", ")", "$"]
    examples = ["()$", "(()(()))$", "()(())()((()))$", "((((((((((()))))))))))$", "(" * 30 + ")" * 30 + "$"]

    def __init__(
        self,
        max_len: int = 50,
        p_end: float = 0.25,
        p_open: float = 0.45,
        p_open_long: float = 0.5,
        eval_strings: int = 500,
    ):
        if max_len < 2:
            raise InputError(f"max_len must be at least 2, got {max_len}")
        for k, p in {"p_end": p_end, "p_open": p_open, "p_open_long": p_open_long}.items():
            if not 0 < p < 1:
                raise InputError(f"{k} must be between 0 and 1, got {p}")
        self.max_len, self.p_end, self.p_open, self.p_open_long = max_len, p_end, p_open, p_open_long
        self.eval_strings = eval_strings
        self.description = (
            f"A small network reading balanced brackets (Dyck-1) one symbol at a time and predicting which "
            f"symbols may come next: '(' always, ')' only while a bracket is open, '$' (the end) only when "
            f"none is. Trained on strings of at most {max_len} symbols (cut there if unfinished); scored on "
            f"held-out strings up to {2 * max_len}, nested deeper. To get it right it has to count: watch for a unit "
            f"whose value steps one way with each '(' and back with each ')'."
        )

    def draw(self, rng: np.random.Generator, hi: int, p_open: float) -> str:
        """Run the generator until "$" or for ``hi`` symbols, whichever comes first (then cut, unfinished)."""
        out: list[str] = []
        depth = 0
        while len(out) < hi:
            if depth == 0:
                ch = "$" if rng.random() < self.p_end else "("
            else:
                ch = "(" if rng.random() < p_open else ")"
            out.append(ch)
            depth += {"(": 1, ")": -1, "$": 0}[ch]
            if ch == "$":
                break
        return "".join(out)

    def sample(self, rng: np.random.Generator, lo: int, hi: int, p_open: float) -> str:
        """A finished string with lo <= len <= hi (counting "$"), by rejection: closings are never forced."""
        while True:
            s = self.draw(rng, hi, p_open)
            if s[-1] == "$" and len(s) >= lo:
                return s

    def batches(self, rng: np.random.Generator, batch: int, bptt: int) -> Iterator[Batch]:
        """Strings of at most max_len, padded to the batch's longest; ``bptt`` is unused.

        A string still open at max_len is cut there rather than rejected: rejecting it would teach
        that strings end near max_len (every target stays a true draw of the process either way).
        """
        while True:
            seqs = [self.encode(self._draw_two(rng)) for _ in range(batch)]
            yield _pack(seqs, [np.ones(len(s) - 1, np.float32) for s in seqs])

    def _draw_two(self, rng: np.random.Generator) -> str:
        """A training string of at least two symbols (one input, one target)."""
        while len(s := self.draw(rng, self.max_len, self.p_open)) < 2:
            pass
        return s

    def heldout(self, seed: int = 1234) -> list[str]:
        """Half from the training distribution, half longer than max_len (up to twice) and deeper."""
        rng, n, N = _heldout_rng(seed), self.eval_strings, self.max_len
        short = [self.sample(rng, 2, N, self.p_open) for _ in range(n - n // 2)]
        return short + [self.sample(rng, N + 1, 2 * N, self.p_open_long) for _ in range(n // 2)]

    def evaluate(self, net: Network, seed: int = 1234) -> dict[str, float]:
        """Per step: is {s : probs[t, s] > THRESHOLD} the allowed set after the prefix s[:t+1]?"""
        self._check_net(net)
        right = total = strings_right = max_depth = 0
        strings = self.heldout(seed)
        for s in strings:
            probs = _probs(net.trace(s[:-1]))  # (T-1, 3): the symbol after each prefix
            ok = np.all((probs > THRESHOLD) == dyck_allowed(s[:-1]), axis=1)  # (T-1,)
            right, total = right + int(ok.sum()), total + len(ok)
            strings_right += bool(ok.all())
            max_depth = max(max_depth, int(dyck_depth(s).max()))
        return {
            "step_accuracy": right / total,
            "string_accuracy": strings_right / len(strings),
            "max_len_eval": float(max(len(s) for s in strings)),
            "max_depth_eval": float(max_depth),
        }


# --------------------------------------------------------------------------------------------
# recall: a long time lag
# --------------------------------------------------------------------------------------------
MEMORY = "abcd"
DISTRACTORS = "0123456789"
QUERY = "?"
_PI = "1415926535897932384626433832795028841971693993751058209749445923078164062862089986280348253421170679"


class RecallTask(Task):
    name = "recall"
    scored = f"the step after '{QUERY}' (the first symbol)"
    vocab = list(MEMORY + DISTRACTORS + QUERY)
    examples = ["a" + _PI[:50] + QUERY, "c" + _PI[:55] + QUERY, "b" + _PI[40:100] + QUERY, "d" + _PI + QUERY]

    def __init__(self, min_gap: int = 50, max_gap: int = 60, eval_sequences: int = 1000, ramp: int = 0):
        if not 0 <= min_gap <= max_gap or max_gap < 1:
            raise InputError(f"need 0 <= min_gap <= max_gap and max_gap >= 1, got min_gap={min_gap}, max_gap={max_gap}")
        if ramp < 0:
            raise InputError(f"ramp must be a number of batches >= 0, got {ramp}")
        self.min_gap, self.max_gap, self.eval_sequences, self.ramp = min_gap, max_gap, eval_sequences, ramp
        self.description = (
            f"The first symbol (one of {', '.join(MEMORY)}) must be named at the end, after {min_gap} to "
            f"{max_gap} random digits that carry no information, when the query '{QUERY}' arrives. A unit has "
            f"to store the symbol at step one and keep it unchanged through the digits: look for a forget "
            f"gate held near 1 and an input gate that opens once."
        )

    def sample(self, rng: np.random.Generator, lo: int, hi: int) -> str:
        """m, then lo..hi distractors, then "?", then m."""
        m = MEMORY[rng.integers(len(MEMORY))]
        gap = rng.integers(len(DISTRACTORS), size=int(rng.integers(lo, hi + 1)))
        return m + "".join(DISTRACTORS[k] for k in gap) + QUERY + m

    def batches(self, rng: np.random.Generator, batch: int, bptt: int) -> Iterator[Batch]:
        """Whole sequences padded to the batch's longest, scored only where the input is "?"; ``bptt`` unused.

        With ``ramp`` > 0, a curriculum: the gaps grow linearly from 1..(max_gap - min_gap + 1) to
        min_gap..max_gap over the first ``ramp`` batches (long lags are found from short ones).
        """
        n = 0
        while True:
            grow = min(1.0, n / self.ramp) if self.ramp else 1.0
            lo = max(1, round(self.min_gap * grow)) if self.ramp else self.min_gap
            hi = lo + self.max_gap - self.min_gap
            n += 1
            seqs = [self.encode(self.sample(rng, lo, hi)) for _ in range(batch)]
            scored = []
            for s in seqs:
                m = np.zeros(len(s) - 1, np.float32)
                m[-1] = 1.0  # the input is "?", the target the first symbol
                scored.append(m)
            yield _pack(seqs, scored)

    def heldout(self, seed: int = 1234) -> tuple[list[str], list[str]]:
        """Sequences with the training gaps, and with longer ones (max_gap + 1 .. 2 max_gap)."""
        rng, n = _heldout_rng(seed), self.eval_sequences
        usual = [self.sample(rng, self.min_gap, self.max_gap) for _ in range(n)]
        return usual, [self.sample(rng, self.max_gap + 1, 2 * self.max_gap) for _ in range(n)]

    def evaluate(self, net: Network, seed: int = 1234) -> dict[str, float]:
        """Right when the argmax after "?" is the first symbol."""
        self._check_net(net)
        index = {ch: k for k, ch in enumerate(self.vocab)}

        def accuracy(seqs: list[str]) -> float:
            hits = [int(np.argmax(_probs(net.trace(s[:-1]))[-1])) == index[s[-1]] for s in seqs]
            return sum(hits) / len(hits)

        usual, long = self.heldout(seed)
        return {"accuracy": accuracy(usual), "accuracy_long": accuracy(long), "min_gap": float(self.min_gap)}


# --------------------------------------------------------------------------------------------
# code: Python source, a character at a time
# --------------------------------------------------------------------------------------------
EXCLUDED_DIRS = frozenset({"site-packages", "test", "tests", "idle_test", "__pycache__"})
MAX_FILE_BYTES = 200_000
MIN_COUNT = 100  # a character enters the vocabulary when it occurs this often in the training files
SEPARATOR = "\n\n"  # between files
CHUNK = 2000  # characters traced at a time in evaluate (the state carries across)


def is_heldout(relpath: str) -> bool:
    """The split: held out when crc32 of the "/"-separated path relative to the stdlib is 0 mod 10."""
    return zlib.crc32(relpath.encode("utf-8")) % 10 == 0


@functools.lru_cache(maxsize=2)
def stdlib_files(root: str) -> tuple[tuple[str, str], ...]:
    """(relative path, text) of every corpus file under ``root``, sorted by path."""
    out = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in EXCLUDED_DIRS]
        for name in names:
            path = Path(folder, name)
            if not name.endswith(".py") or name.startswith("_sysconfigdata") or path.stat().st_size > MAX_FILE_BYTES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            out.append((path.relative_to(root).as_posix(), text))
    return tuple(sorted(out))


def _codepoints(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), np.uint32)  # (T,)


class CodeTask(Task):
    name = "code"
    vocab: list[str]
    unk = "<unk>"
    examples = [
        "def __init__(self, name, value=None):\n    self.name = name\n    self.value = value\n",
        "for i, line in enumerate(lines):\n    if line.startswith('#'):\n        continue\n",
        "import os\nimport sys\n\n\ndef main(argv=None):\n    args = parse_args(argv)\n    return 0\n",
        'class Point:\n    """A point in the plane."""\n\n    def __repr__(self):\n        return f"Point({self.x})"\n',
        # nested brackets (depth 4): the bracket unit's walk
        "print(sorted(set(len(w) for w in words), key=lambda n: (abs(n - 4), n))[:3])\n",
    ]

    def __init__(self, max_chars: int = 8_000_000, eval_chars: int = 100_000):
        if eval_chars < 2:
            raise InputError(f"eval_chars must be at least 2, got {eval_chars}")
        self.root = sysconfig.get_paths()["stdlib"]
        self.max_chars, self.eval_chars = max_chars, eval_chars
        files = stdlib_files(self.root)
        self.train_files = [p for p, _ in files if not is_heldout(p)]
        self.heldout_files = [p for p, _ in files if is_heldout(p)]
        self._text = dict(files)
        counts = np.bincount(_codepoints(self.train_text(None)))
        chars = [chr(c) for c in np.flatnonzero(counts >= MIN_COUNT)]
        self.vocab = [self.unk, *chars]
        version = "{}.{}".format(*sys.version_info[:2])
        self.description = (
            f"A character-level LSTM language model of Python source, trained on the Python {version} standard "
            f"library ({len(self.train_files)} files; {len(self.heldout_files)} more held out, never seen in "
            f"training). It reads code a character at a time and predicts the next one. Look for units that track "
            f"indentation, whether the text is inside a string or a comment, and how deep the brackets go."
        )
        self._train_ids: np.ndarray | None = None

    def train_text(self, max_chars: int | None = None) -> str:
        """The training files in path order, joined by SEPARATOR, cut to ``max_chars`` (None: all)."""
        return SEPARATOR.join(self._text[p] for p in self.train_files)[:max_chars]

    def heldout_text(self, n_chars: int | None = None) -> str:
        """The first ``n_chars`` of the held-out files in path order, joined by SEPARATOR (None: all)."""
        out, size = [], 0
        for p in self.heldout_files:
            if n_chars is not None and size >= n_chars:
                break
            out.append(self._text[p])
            size += len(self._text[p]) + len(SEPARATOR)
        return SEPARATOR.join(out)[:n_chars]

    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text``, (T,) int64, by a table lookup (characters outside the vocabulary are <unk>)."""
        cps = _codepoints(text)  # (T,)
        table = np.zeros(max(int(cps.max(initial=0)), ord(self.vocab[-1])) + 1, np.int64)  # 0 is <unk>
        table[[ord(ch) for ch in self.vocab[1:]]] = np.arange(1, len(self.vocab))
        return table[cps]

    def batches(self, rng: np.random.Generator, batch: int, bptt: int) -> Iterator[Batch]:
        """The training text as ``batch`` contiguous streams, ``bptt`` characters a batch, the state carried on.

        Each epoch starts the streams at a fresh random offset in [0, bptt) and sets ``reset`` on its first batch.
        """
        if self._train_ids is None:
            self._train_ids = self.encode(self.train_text(self.max_chars)).astype(np.min_scalar_type(len(self.vocab)))
        ids = self._train_ids  # (N,)
        while True:
            offset = int(rng.integers(bptt))
            L = (len(ids) - 1 - offset) // batch  # characters per stream
            if L < bptt:
                raise InputError(f"{len(ids)} training characters are too few for {batch} streams of {bptt}")
            X = ids[offset : offset + batch * L].reshape(batch, L)  # (B, L)
            Y = ids[offset + 1 : offset + 1 + batch * L].reshape(batch, L)  # (B, L) the next character
            for k in range(L // bptt):
                window = slice(k * bptt, (k + 1) * bptt)
                x, y = X[:, window].astype(np.int64), Y[:, window].astype(np.int64)  # (B, bptt)
                yield Batch(x, y, np.ones((batch, bptt), np.float32), reset=k == 0)

    def evaluate(self, net: Network, seed: int = 1234) -> dict[str, float]:
        """Bits per character on the held-out text, traced CHUNK characters at a time with the state carried.

        ``seed`` is unused: the held-out text is fixed. The first character is not predicted; a probability
        below 1e-12 counts as 1e-12 (about 40 bits).
        """
        self._check_net(net)
        text = self.heldout_text(self.eval_chars)
        ids = self.encode(text)  # (n,)
        bits, state = 0.0, None
        for a in range(0, len(text), CHUNK):
            tr = net.trace(text[a : a + CHUNK], state=state)
            target = ids[a + 1 : a + CHUNK + 1]  # (<= CHUNK,) the character after each traced one
            p = _probs(tr)[np.arange(len(target)), target].astype(np.float64)  # (<= CHUNK,)
            bits -= np.log2(np.maximum(p, 1e-12)).sum()
            state = tr.state
        return {"bits_per_char": bits / (len(text) - 1), "eval_chars": float(len(text))}


#: Every task by name; model/regression.py adds its own ("adding", "co2") when it is imported, below.
TASKS: dict[str, type[Task]] = {"code": CodeTask, "dyck": DyckTask, "recall": RecallTask}


def get_task(name: str, **options: Any) -> Task:
    """The task called ``name`` (a key of ``TASKS``), built with ``options`` (see each class)."""
    if name not in TASKS:
        raise InputError(f"unknown task {name!r}: expected one of {', '.join(TASKS)}")
    known = set(inspect.signature(TASKS[name]).parameters)
    extra = sorted(set(options) - known)
    if extra:
        raise InputError(f"the {name} task has no option {', '.join(extra)}; it takes {', '.join(sorted(known))}")
    return TASKS[name](**options)


from . import regression  # noqa: E402, F401  (it builds on Task and registers its tasks in TASKS)
