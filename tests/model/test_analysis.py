"""Analysis: code features on hand-written snippets, and unit finders on planted or hand-built units."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model import Network, Spec
from model.analysis import best_units, code_features, correlate, depth_unit, memory_unit
from model.analysis.code import _scan_spans

ROOT = Path(__file__).resolve().parents[2]


def mask(text: str, *parts: str) -> np.ndarray:
    """1 over each part, each found after the one before it; 0 elsewhere."""
    out, start = np.zeros(len(text)), 0
    for part in parts:
        a = text.index(part, start)
        out[a : a + len(part)] = 1
        start = a + len(part)
    return out


def check(got: np.ndarray, expected, text: str) -> None:
    np.testing.assert_array_equal(got, np.asarray(expected, float), err_msg=repr(text))


# --------------------------------------------------------------------------------------------
# code_features
# --------------------------------------------------------------------------------------------
def test_features_are_float_arrays_one_value_per_character():
    text = "def f(x):\n    return x  # done\n"
    feats = code_features(text)
    assert list(feats) == ["in_string", "in_comment", "bracket_depth", "indent", "line_position"]
    for name, values in feats.items():
        assert values.shape == (len(text),), name
        assert values.dtype == np.float64, name


def test_an_escaped_quote_does_not_end_the_string():
    text = 'x = "a\\"b" + c  # c\n'
    feats = code_features(text)
    check(feats["in_string"], mask(text, '"a\\"b"'), text)
    check(feats["in_comment"], mask(text, "# c"), text)


def test_a_docstring_spanning_lines_is_one_string_newlines_included():
    text = 'def f():\n    """Doc\n    more\n    """\n    return 1\n'
    feats = code_features(text)
    check(feats["in_string"], mask(text, '"""Doc\n    more\n    """'), text)
    assert feats["in_comment"].sum() == 0


def test_prefixed_strings_include_their_prefix():
    text = "x = rb'\\d' + f\"{y!r}\"\n"
    check(code_features(text)["in_string"], mask(text, "rb'\\d'", 'f"{y!r}"'), text)


def test_a_hash_inside_a_string_is_not_a_comment():
    text = 'x = "# not" + y  # yes\n'
    feats = code_features(text)
    check(feats["in_string"], mask(text, '"# not"'), text)
    check(feats["in_comment"], mask(text, "# yes"), text)


def test_quotes_inside_a_comment_open_no_string():
    text = 'x = 1  # it\'s "quoted"\ny = 2\n'
    feats = code_features(text)
    assert feats["in_string"].sum() == 0
    check(feats["in_comment"], mask(text, '# it\'s "quoted"'), text)


def test_bracket_depth_counts_nesting_across_lines_after_each_character():
    text = "f(a, [1,\n  {2: (3)}])\n"
    #       f  (  a  ,  _  [  1  ,  ⏎  _  _  {  2  :  _  (  3  )  }  ]  )  ⏎
    depth = [0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 3, 2, 1, 0, 0]
    check(code_features(text)["bracket_depth"], depth, text)


def test_brackets_in_strings_and_comments_do_not_count():
    text = "x = \"(\" + s  # [\ny = '{'\n"
    assert code_features(text)["bracket_depth"].sum() == 0


def test_indent_is_the_width_of_the_line_leading_whitespace():
    text = "def f(x):\n    if x:\n        return 1\n\treturn 2\n"
    lines = text.splitlines(keepends=True)
    widths = [0, 4, 8, 8]  # a tab moves to the next multiple of 8
    check(code_features(text)["indent"], np.repeat(widths, [len(s) for s in lines]), text)


def test_line_position_resets_after_each_newline():
    text = "ab\ncde\n\nf"
    check(code_features(text)["line_position"], [0, 1, 2, 0, 1, 2, 3, 0, 0], text)


def test_a_chunk_cut_mid_string_keeps_its_length_and_its_open_strings():
    text = 'def f():\n    s = b"abc\n    t = """doc\n    more'
    feats = code_features(text)
    for name, values in feats.items():
        assert values.shape == (len(text),), name
    # The unterminated b"abc ends with its line; the unterminated docstring runs to the end.
    check(feats["in_string"], mask(text, 'b"abc', '"""doc\n    more'), text)


def test_a_chunk_with_a_bad_dedent_falls_back_to_the_scanner():
    text = "        x = 1\n    y = '#' + z  # (\n    w = (1,\n"  # tokenize raises IndentationError on line 2
    feats = code_features(text)
    check(feats["in_string"], mask(text, "'#'"), text)
    check(feats["in_comment"], mask(text, "# ("), text)
    assert feats["bracket_depth"][-1] == 1
    assert list(feats["indent"][:3]) == [8, 8, 8] and feats["indent"][-1] == 4


def test_a_chunk_cut_mid_expression_keeps_counting():
    text = "])\nf(x,\n  y"  # closers without openers, then an open call
    check(code_features(text)["bracket_depth"], [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1], text)


@pytest.mark.parametrize("path", ["model/analysis/code.py", "model/cells.py", "model/network.py", "model/tokenizer.py"])
def test_the_fallback_scanner_agrees_with_tokenize_on_real_source(path):
    text = (ROOT / path).read_text()
    feats = code_features(text)
    in_string, in_comment = np.zeros(len(text)), np.zeros(len(text))
    _scan_spans(text, 0, in_string, in_comment)
    assert feats["in_string"].sum() > 100
    np.testing.assert_array_equal(in_string, feats["in_string"])
    np.testing.assert_array_equal(in_comment, feats["in_comment"])


@pytest.mark.parametrize(
    "text, strings",
    [
        # the quotes themselves are inside, both of them; so is every prefix letter, in either case
        ("a = 'x'\n", ["'x'"]),
        ("a = Rb'x' + BR\"y\" + U'z'\n", ["Rb'x'", 'BR"y"', "U'z'"]),
        # an escaped quote of either kind, and a backslash-newline, stay inside their string
        ("s = 'it\\'s' + \"a\\\"b\"\n", ["'it\\'s'", '"a\\"b"']),
        ("s = 'one \\\ntwo'\n", ["'one \\\ntwo'"]),
        # quotes of the other kind, and lone ones of the same kind, inside a triple-quoted string
        ('d = """say "hi" or \'bye\' ""\n"""\n', ['"""say "hi" or \'bye\' ""\n"""']),
        # an f-string is one string, its {fields} and the quotes inside them too
        ("m = f\"{d['k']!r:>{w}}\" + x\n", ["f\"{d['k']!r:>{w}}\""]),
        # adjacent literals: the space between them is code
        ("t = ('a' 'b')\n", ["'a'", "'b'"]),
        # an apostrophe in a comment opens nothing, nor does one after a string on the same line
        ("x = 'q'  # don't\ny = 1  # isn't it\n", ["'q'"]),
    ],
)
def test_in_string_by_hand(text, strings):
    check(code_features(text)["in_string"], mask(text, *strings), text)


def tokenize_strings(text: str) -> np.ndarray | None:
    """1 on the characters of every STRING token, as Python's tokenize module reads ``text`` (None: it fails)."""
    import io
    import tokenize

    lines = [0] + [t + 1 for t, ch in enumerate(text) if ch == "\n"]  # offset of each line
    out = np.zeros(len(text))
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.STRING:  # Python 3.11: an f-string is one STRING token
                out[lines[tok.start[0] - 1] + tok.start[1] : lines[tok.end[0] - 1] + tok.end[1]] = 1
    except (tokenize.TokenError, SyntaxError):
        return None
    return out


def test_in_string_is_what_tokenize_says_on_every_held_out_file_of_the_code_model():
    """The probes' label on the files they are fit and scored on (model/tasks.py's held-out split): every file
    tokenizes, so no character is labelled by the fallback scanner, and in_string is exactly tokenize's STRING
    tokens (1,167,905 characters, 26% inside strings, on Python 3.11)."""
    import sysconfig

    from model import tasks

    files = [(rel, text) for rel, text in tasks.stdlib_files(sysconfig.get_paths()["stdlib"]) if tasks.is_heldout(rel)]
    assert len(files) > 50
    inside = 0
    for rel, text in files:
        ref = tokenize_strings(text)
        assert ref is not None, f"{rel} does not tokenize"
        got = code_features(text)["in_string"]
        bad = np.flatnonzero(got != ref)
        where = f"first at {bad[0]}: {text[bad[0] - 20 : bad[0] + 20]!r}" if len(bad) else ""
        assert not len(bad), f"{rel}: {len(bad)} characters differ, {where}"
        inside += int(ref.sum())
    assert 0.1 < inside / sum(len(t) for _, t in files) < 0.5


# --------------------------------------------------------------------------------------------
# correlate and best_units
# --------------------------------------------------------------------------------------------
def test_correlate_matches_a_hand_worked_value_and_refuses_constants():
    # centred: a = (-1.5, -0.5, 0.5, 1.5), b = (-1.5, 0.5, -0.5, 1.5); Σab = 4, Σa² = Σb² = 5: r = 0.8
    r = correlate([1, 2, 3, 4], [1, 3, 2, 4])
    assert type(r) is float and r == pytest.approx(0.8, abs=1e-12)
    assert correlate([1, 2, 3], [-2, -4, -6]) == pytest.approx(-1.0)
    assert correlate([0.1] * 50, np.arange(50)) is None  # constant: r undefined, not NaN
    assert correlate(np.arange(5), [1, 2, np.nan, 4, 5]) is None
    with pytest.raises(ValueError, match="lengths 3 and 2"):
        correlate([1, 2, 3], [1, 2])


VOCAB = list("abcdef (){}:\n")


def planted_trace(seed: int = 0):
    """A random 2-layer LSTM's trace with unit 3 of layer 1 and unit 2 of layer 0 overwritten."""
    spec = Spec(
        cell="lstm", input_size=len(VOCAB), hidden_size=6, num_layers=2, vocab=VOCAB, tokenizer="char", unk=None
    )
    rng = np.random.default_rng(seed)
    net = Network(spec, {n: rng.normal(0, 0.6, spec.expected_shape(n)) for n in spec.param_names()})
    text = "".join(rng.choice(VOCAB, 300))
    tr = net.trace(text)
    a, b = rng.normal(size=len(text)), rng.normal(size=len(text))
    tr.layers[1]["c"][:, 3] = a
    tr.layers[0]["c"][:, 2] = 1.0 - 2.0 * b
    return tr, a, b


def test_best_units_finds_planted_units_with_their_sign():
    tr, a, b = planted_trace()
    found = best_units(tr, {"a": a, "b": b, "flat": np.ones(len(a))})
    assert found == [
        {"feature": "a", "layer": 1, "unit": 3, "r": pytest.approx(1.0, abs=1e-4)},
        {"feature": "b", "layer": 0, "unit": 2, "r": pytest.approx(-1.0, abs=1e-4)},
        {"feature": "flat", "layer": None, "unit": None, "r": None},  # constant: skipped, not divided by zero
    ]
    json.dumps(found)  # plain Python numbers, ready for a model card
    assert all(type(d["r"]) is float and type(d["unit"]) is int for d in found[:2])


def test_best_units_searches_only_the_layer_and_gate_asked_for():
    tr, a, b = planted_trace()
    (only0,) = best_units(tr, {"a": a}, layer=0)
    assert only0["layer"] == 0 and abs(only0["r"]) < 0.5
    (in_h,) = best_units(tr, {"a": a}, gate="h")  # the plant is in c only
    assert abs(in_h["r"]) < 0.5
    with pytest.raises(ValueError, match="gate 'z'"):
        best_units(tr, {"a": a}, gate="z")
    with pytest.raises(ValueError, match="layer 2"):
        best_units(tr, {"a": a}, layer=2)
    with pytest.raises(ValueError, match="feature 'short'"):
        best_units(tr, {"short": a[:-1]})


def test_best_units_on_code_features_of_a_real_trace_runs_end_to_end():
    tr, _, _ = planted_trace()
    text = "".join(tr.tokens)
    found = best_units(tr, code_features(text), gate="h")
    assert [d["feature"] for d in found] == list(code_features(text))
    json.dumps(found)


# --------------------------------------------------------------------------------------------
# Hand-built networks: a counter, and a memory
# --------------------------------------------------------------------------------------------
def planted(cell: str, vocab: list[str], H: int, unit: int, W: dict, b: dict, U_self: dict | None = None) -> Network:
    """A random one-layer network whose ``unit`` is set by hand.

    W[g][token] is the input weight of gate g for that token (one-hot input: a row of W_g),
    b[g] its bias, U_self[g] its recurrent weight from itself; it reads no other unit.
    """
    spec = Spec(cell=cell, input_size=len(vocab), hidden_size=H, vocab=vocab, tokenizer="char", unk=None)
    rng = np.random.default_rng(7)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)) for n in spec.param_names()}
    for name in spec.param_names():
        kind, g = name.split(".")[-1].split("_", 1)
        if kind == "W":
            params[name][:, unit] = [W.get(g, {}).get(tok, 0.0) for tok in vocab]
        elif kind == "U":
            params[name][:, unit] = 0.0
            params[name][unit, unit] = (U_self or {}).get(g, 0.0)
        elif kind == "b":
            params[name][unit] = b.get(g, 0.0)
    return Network(spec, params)


def dyck(rng: np.random.Generator, n: int) -> str:
    """A balanced string of n bracket pairs, then "$"."""
    out, depth, opened = [], 0, 0
    while opened < n or depth > 0:
        if opened < n and (depth == 0 or rng.random() < 0.55):
            out.append("(")
            depth, opened = depth + 1, opened + 1
        else:
            out.append(")")
            depth -= 1
    return "".join(out) + "$"


def depth_after(text: str) -> np.ndarray:
    return np.cumsum([{"(": 1, ")": -1}.get(ch, 0) for ch in text])


def test_depth_unit_finds_a_hand_built_counter():
    # Unit 1 counts: input gate open on brackets, c_tilde = +1 for "(" and -1 for ")", forget gate ≈ 1.
    W = {"i": {"(": 10.0, ")": 10.0, "$": -10.0}, "c": {"(": 10.0, ")": -10.0}}
    net = planted("lstm", ["(", ")", "$"], H=4, unit=1, W=W, b={"f": 10.0})
    rng = np.random.default_rng(0)
    texts = [dyck(rng, int(rng.integers(5, 30))) for _ in range(20)]
    found = depth_unit(net, texts, depth_after)
    assert found["layer"] == 0 and found["unit"] == 1
    assert found["r"] > 0.99
    json.dumps(found)
    with pytest.raises(ValueError, match="depth_fn gave shape"):
        depth_unit(net, texts, lambda text: depth_after(text)[:-1])


SYMBOLS = list("abcd")
RECALL_VOCAB = SYMBOLS + list("0123456789") + ["?"]
DIGITS = {d: -10.0 for d in "0123456789?"}


def recall_texts(n: int = 40) -> list[str]:
    rng = np.random.default_rng(1)
    return [
        str(rng.choice(SYMBOLS)) + "".join(rng.choice(list("0123456789"), int(rng.integers(50, 61)))) + "?"
        for _ in range(n)
    ]


def test_memory_unit_finds_a_hand_built_lstm_memory_and_its_open_forget_gate():
    # Unit 2 writes a value per symbol (input gate open on a-d, shut on digits) and keeps it (f ≈ 1).
    c_tilde = {"a": 10.0, "b": -10.0, "c": float(np.arctanh(0.5)), "d": float(np.arctanh(-0.5))}
    W = {"i": {s: 10.0 for s in SYMBOLS} | DIGITS, "c": c_tilde}
    net = planted("lstm", RECALL_VOCAB, H=5, unit=2, W=W, b={"f": 10.0})
    found = memory_unit(net, recall_texts())
    assert (found["layer"], found["unit"]) == (0, 2)
    assert found["separation"] > 0.99
    assert found["mean_forget"] > 0.95
    json.dumps(found)


def test_memory_unit_reports_how_much_a_gru_keeps_as_one_minus_z():
    # z ≈ 1 on a-d (take h_tilde = ±1), z ≈ 0 on digits (keep h): 1 - z ≈ 1 over the distractors.
    W = {"z": {s: 10.0 for s in SYMBOLS} | DIGITS, "h": {"a": 10.0, "b": -10.0, "c": 0.5, "d": -0.5}}
    net = planted("gru", RECALL_VOCAB, H=5, unit=3, W=W, b={})
    found = memory_unit(net, recall_texts())
    assert (found["layer"], found["unit"]) == (0, 3)
    assert found["mean_forget"] > 0.95


def test_memory_unit_of_an_rnn_has_no_forget_gate():
    # A self-loop of 3 makes h bistable: tanh(3h) keeps h near ±0.995 once a or b pushed it there.
    W = {"h": {"a": 5.0, "b": -5.0, "c": 5.0, "d": -5.0}}
    net = planted("rnn", RECALL_VOCAB, H=5, unit=0, W=W, b={}, U_self={"h": 3.0})
    texts = [t for t in recall_texts() if t[0] in "ab"]
    found = memory_unit(net, texts)
    assert (found["layer"], found["unit"]) == (0, 0)
    assert found["separation"] > 0.99 and found["mean_forget"] is None


def test_memory_unit_refuses_texts_it_cannot_group():
    net = planted("lstm", RECALL_VOCAB, H=3, unit=0, W={}, b={})
    with pytest.raises(ValueError, match="at least two memory symbols"):
        memory_unit(net, ["a123?", "a456?"])
    with pytest.raises(ValueError, match="too short"):
        memory_unit(net, ["a?", "b1?"])
