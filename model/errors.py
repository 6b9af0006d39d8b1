"""Every error gatescope raises on purpose, in one hierarchy (as httpx's ``_exceptions.py``):

    GatescopeError              anything gatescope refuses, with a message that names the problem
    ├── InputError              the caller's input: empty or too long, the wrong shape, NaN, a bad state,
    │   │                       a feature of the wrong length, a task setting out of range
    │   └── UnknownTokenError   text holds tokens the vocabulary lacks, and it has no unknown entry
    ├── FormatError             a file or a set of weights: not a weight file, malformed, or a model
    │   │                       gatescope cannot run (missing weights, wrong shapes, an unknown cell)
    │   └── SeveralModules      a file holds several recurrent modules: choose one with module=
    └── Cancelled               a run stopped because its caller asked (``stop=`` said so): nobody's fault

Each one is also a ``ValueError``, so ``except ValueError`` in a notebook keeps working. A caller that
serves others (the web app, the CLI) treats exactly these as the caller's mistake: an InputError is
the request's fault, a FormatError the file's. Anything else raised from model/ (a ``ValueError`` from
NumPy included) is a bug in gatescope and must show as one, never as the user's fault.
"""

from __future__ import annotations


class GatescopeError(ValueError):
    """Something gatescope refuses; the message says what, in words a person can act on."""


class InputError(GatescopeError):
    """The caller's input cannot be traced (or analysed) as given."""


class UnknownTokenError(InputError):
    """Text holds tokens the vocabulary lacks, and the vocabulary has no unknown entry."""

    def __init__(self, tokens: list[str], positions: list[int]):
        self.tokens, self.positions = tokens, positions
        shown = ", ".join(f"{t!r} at {p}" for t, p in list(zip(tokens, positions))[:10])
        more = f" and {len(tokens) - 10} more" if len(tokens) > 10 else ""
        super().__init__(f"not in the model's vocabulary: {shown}{more}")


class FormatError(GatescopeError):
    """A file is not what it claims, or holds a model gatescope cannot run; the message says which."""


class Cancelled(GatescopeError):
    """A run stopped before its end because its ``stop`` callable said so (e.g. the client left)."""


class SeveralModules(FormatError):
    """A file holds several recurrent modules and none was chosen; ``modules`` lists their names, one of
    which ``model.load(..., module=...)`` takes."""

    def __init__(self, message: str, modules: list[str]):
        super().__init__(message)
        self.modules = modules
