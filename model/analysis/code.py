"""Features of Python source, one value per character: in a string, in a comment, bracket depth, indent, line position.

Karpathy, Johnson & Fei-Fei (2015, "Visualizing and Understanding Recurrent Networks") found cells of
character-level LSTMs that track whether the text is inside a quote, how deep it is inside brackets, and
how far along its line it is; these are the features such cells are looked for with.
"""

from __future__ import annotations

import io
import tokenize

import numpy as np

OPEN, CLOSE = "([{", ")]}"
QUOTES = "'\""
PREFIX = "rRbBuUfF"  # string prefix letters: r"", b"", f"", rb"", ...


def code_features(text: str) -> dict[str, np.ndarray]:
    """Per-character features of Python source, each (T,) float64 with T = len(text).

    in_string      1 on every character of a string literal: its prefix (r, b, f, ...), its quotes and
                   everything between, newlines of triple-quoted strings (docstrings) included; an
                   f-string counts whole, its {fields} too. An unterminated "..." or '...' ends at
                   its line's end, an unterminated triple-quoted string at the end of the text.
    in_comment     1 from a "#" outside strings to the end of its line (the newline excluded).
    bracket_depth  how many of ( [ { are open after this character, counting only brackets outside
                   strings and comments; a closer with no opener (a chunk cut mid-expression) leaves it at 0.
    indent         the width of the leading spaces and tabs of the character's line (a tab moves to the
                   next multiple of 8, as Python's tokenizer counts), the same for every character of
                   the line, its newline included.
    line_position  the character's column in its line, from 0; a newline sits at the column after the
                   line's last character, and the character after it is at 0.

    Strings and comments come from the ``tokenize`` module; where it gives up (code cut mid-file,
    an unterminated string, an inconsistent dedent) a small character scanner takes over from the
    last token it understood. Text that starts inside a string cannot be known as such: its start
    is read as code.
    """
    T = len(text)
    in_string, in_comment = np.zeros(T), np.zeros(T)
    resume = _tokenize_spans(text, in_string, in_comment)
    if resume is not None:
        in_string[resume:], in_comment[resume:] = 0, 0
        _scan_spans(text, resume, in_string, in_comment)
    code = (in_string == 0) & (in_comment == 0)
    bracket_depth, indent, line_position = np.zeros(T), np.zeros(T), np.zeros(T)
    depth, line_start, width = 0, 0, _indent_width(text, 0)
    for t, ch in enumerate(text):
        if code[t] and ch in OPEN:
            depth += 1
        elif code[t] and ch in CLOSE:
            depth = max(depth - 1, 0)
        bracket_depth[t], indent[t], line_position[t] = depth, width, t - line_start
        if ch == "\n":
            line_start = t + 1
            width = _indent_width(text, line_start)
    return {
        "in_string": in_string,
        "in_comment": in_comment,
        "bracket_depth": bracket_depth,
        "indent": indent,
        "line_position": line_position,
    }


def _indent_width(text: str, start: int) -> int:
    """Width of the spaces and tabs that open the line starting at ``start``."""
    width = 0
    for ch in text[start:]:
        if ch == " ":
            width += 1
        elif ch == "\t":
            width = (width // 8 + 1) * 8
        else:
            break
    return width


def _tokenize_spans(text: str, in_string: np.ndarray, in_comment: np.ndarray) -> int | None:
    """Mark strings and comments as ``tokenize`` reads them; the offset where it gave up, or None."""
    starts = [0] + [t + 1 for t, ch in enumerate(text) if ch == "\n"]  # offset of each line

    def offset(pos: tuple[int, int]) -> int:
        row, col = pos
        return min(starts[row - 1] + col, len(text)) if row - 1 < len(starts) else len(text)

    fstring_start = getattr(tokenize, "FSTRING_START", -1)  # Python >= 3.12 splits f-strings up
    fstring_end = getattr(tokenize, "FSTRING_END", -1)
    open_fstrings: list[int] = []  # offsets where the f-strings still open began
    understood = 0  # offset up to which the tokens were all well-formed
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            a, b = offset(tok.start), offset(tok.end)
            if tok.type == tokenize.ERRORTOKEN and tok.string[:1] in QUOTES and tok.string:
                return open_fstrings[0] if open_fstrings else a  # an unterminated string (Python 3.11)
            if tok.type == fstring_start:
                open_fstrings.append(a)
            elif tok.type == fstring_end:
                first = open_fstrings.pop()
                if not open_fstrings:
                    in_string[first:b] = 1
            elif tok.type == tokenize.STRING and not open_fstrings:
                in_string[a:b] = 1
            elif tok.type == tokenize.COMMENT and not open_fstrings:
                in_comment[a:b] = 1
            understood = open_fstrings[0] if open_fstrings else max(understood, b)
    except (tokenize.TokenError, SyntaxError):  # SyntaxError covers IndentationError
        return understood
    return None


def _scan_spans(text: str, start: int, in_string: np.ndarray, in_comment: np.ndarray) -> None:
    """Mark strings and comments from ``start`` on with a character scanner (the fallback)."""
    t, T = start, len(text)
    while t < T:
        ch = text[t]
        if ch == "#":
            end = text.find("\n", t)
            end = T if end < 0 else end
            in_comment[t:end] = 1
            t = end
        elif ch in QUOTES:
            quote = text[t : t + 3] if text[t : t + 3] == ch * 3 else ch
            first = t
            while first > 0 and t - first < 2 and text[first - 1] in PREFIX:
                first -= 1
            if first > 0 and (text[first - 1].isalnum() or text[first - 1] == "_"):
                first = t  # the letters end a name: not a prefix
            u = t + len(quote)
            while u < T:
                if text[u] == "\\":
                    u += 2  # an escaped character (a backslash-newline continues the line)
                elif text.startswith(quote, u):
                    u += len(quote)
                    break
                elif text[u] == "\n" and len(quote) == 1:
                    break  # unterminated: the string ends with its line
                else:
                    u += 1
            u = min(u, T)
            in_string[first:u] = 1
            t = u
        else:
            t += 1
