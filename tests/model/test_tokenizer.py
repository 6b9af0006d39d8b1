"""Tokenizers: characters and whitespace-separated words, unknown tokens, and how a traced text reports them."""

from __future__ import annotations

import numpy as np
import pytest

import model
from model import Network, Spec, UnknownTokenError
from model.tokenizer import Tokenizer

CHARS = ["<unk>", " ", "a", "b", "c", "é", "\n"]
WORDS = ["<unk>", "the", "cat", "sat", "on", "mat"]


def text_net(vocab, tokenizer, unk="<unk>", embedding=False, cell="lstm", seed=0):
    D = 4 if embedding else len(vocab)
    spec = Spec(cell, D, 3, vocab=vocab, tokenizer=tokenizer, unk=unk, embedding=embedding, output_size=len(vocab))
    rng = np.random.default_rng(seed)
    return Network(spec, {n: rng.normal(0, 0.7, spec.expected_shape(n)) for n in spec.param_names()})


# --- splitting -------------------------------------------------------------------------------
def test_char_tokenizer_splits_into_characters_keeping_whitespace():
    tok = Tokenizer(CHARS, "char")
    assert tok.split("ab c\né") == ["a", "b", " ", "c", "\n", "é"]
    enc = tok.encode("ab c\né")
    assert enc.ids.tolist() == [2, 3, 1, 4, 6, 5]
    assert enc.ids.dtype == np.int64
    assert enc.unknown == []


@pytest.mark.parametrize(
    "text",
    [
        "the cat sat",
        "  the   cat sat  ",
        "the\tcat\nsat",
        "the\r\ncat\x0bsat",
        "the\u00a0cat\u2003sat",  # no-break space, em space
        "\nthe\n\ncat\t \tsat\n",
    ],
)
def test_word_tokenizer_splits_on_any_whitespace(text):
    tok = Tokenizer(WORDS, "word")
    assert tok.split(text) == ["the", "cat", "sat"]
    assert tok.encode(text).ids.tolist() == [1, 2, 3]


def test_word_tokenizer_keeps_punctuation_inside_words():
    tok = Tokenizer(WORDS + ["cat."], "word")
    enc = tok.encode("the cat. cat")
    assert enc.tokens == ["the", "cat.", "cat"]
    assert enc.ids.tolist() == [1, 6, 2]


def test_duplicate_vocabulary_entries_map_to_the_first():
    tok = Tokenizer(["<unk>", "a", "b", "a"], "char")
    assert tok.encode("ab").ids.tolist() == [1, 2]


# --- unknown tokens --------------------------------------------------------------------------
def test_unknown_chars_map_to_unk_and_are_listed():
    tok = Tokenizer(CHARS, "char")
    enc = tok.encode("axbyc")
    assert enc.ids.tolist() == [2, 0, 3, 0, 4]
    assert enc.unknown == [1, 3]
    assert enc.tokens == ["a", "x", "b", "y", "c"]  # the text's own tokens, not "<unk>"


def test_unknown_words_map_to_unk_and_are_listed():
    tok = Tokenizer(WORDS, "word")
    enc = tok.encode("the dog sat on the rug")
    assert enc.ids.tolist() == [1, 0, 3, 4, 1, 0]
    assert enc.unknown == [1, 5]  # word positions, not character offsets


def test_custom_unk_entry():
    tok = Tokenizer(["?", "a", "b"], "char", unk="?")
    enc = tok.encode("abz")
    assert enc.ids.tolist() == [1, 2, 0]
    assert enc.unknown == [2]


def test_trace_of_text_reports_unknown_positions():
    net = text_net(CHARS, "char")
    tr = net.trace("abxcz")
    assert tr.unknown == [2, 4]
    assert tr.tokens == ["a", "b", "x", "c", "z"]
    assert len(tr) == 5 and tr.layers[0]["h"].shape == (5, 3)


def test_unknown_token_runs_as_the_unk_entry():
    """A word the vocabulary lacks gives exactly the gates of the vocabulary's "<unk>" word."""
    net = text_net(WORDS, "word", embedding=True)
    a, b = net.trace("the dog sat"), net.trace("the <unk> sat")
    assert a.unknown == [1] and b.unknown == []
    for gate in net.gates:
        assert np.array_equal(a.layers[0][gate], b.layers[0][gate]), gate
    assert np.array_equal(a.probs, b.probs)


def test_known_text_has_no_unknown_positions():
    net = text_net(WORDS, "word")
    assert net.trace("the cat sat on the mat").unknown == []


def test_vocabulary_without_unk_refuses_unknown_tokens_naming_them():
    net = text_net(["a", "b", "c", " "], "char", unk=None)
    with pytest.raises(UnknownTokenError) as info:
        net.trace("ab cxb")
    err = info.value
    assert isinstance(err, ValueError)
    assert err.tokens == ["x"] and err.positions == [4]
    assert "'x'" in str(err) and "4" in str(err)
    assert "vocabulary" in str(err)


def test_unk_named_but_absent_from_the_vocabulary_refuses_unknown_tokens():
    net = text_net(["the", "cat"], "word", unk="<unk>")
    with pytest.raises(model.UnknownTokenError, match=r"'dog' at 1"):
        net.trace("the dog")


def test_unknown_token_error_names_every_unknown_word_and_its_position():
    tok = Tokenizer(["the", "cat"], "word", unk=None)
    with pytest.raises(UnknownTokenError) as info:
        tok.encode("the dog and the bird")
    msg = str(info.value)
    for frag in ("'dog' at 1", "'and' at 2", "'bird' at 4"):
        assert frag in msg
    assert info.value.positions == [1, 2, 4]


def test_unknown_token_error_shortens_long_lists():
    tok = Tokenizer(["a"], "char", unk=None)
    with pytest.raises(UnknownTokenError) as info:
        tok.encode("a" + "xyz" * 5)  # 15 unknown characters
    msg = str(info.value)
    assert "'x' at 1" in msg and "and 5 more" in msg
    assert len(info.value.tokens) == 15


# --- empty text and bad vocabularies ---------------------------------------------------------
@pytest.mark.parametrize(
    ("vocab", "kind", "text"), [(CHARS, "char", ""), (WORDS, "word", ""), (WORDS, "word", " \n\t ")]
)
def test_empty_text_is_refused(vocab, kind, text):
    net = text_net(vocab, kind)
    with pytest.raises(ValueError, match="empty"):
        net.trace(text)


def test_unknown_tokenizer_kind_is_refused():
    with pytest.raises(ValueError, match="bpe"):
        Tokenizer(WORDS, "bpe")
    spec = Spec("rnn", len(WORDS), 2, vocab=WORDS, tokenizer="bpe")
    with pytest.raises(ValueError, match="bpe"):
        Network(spec, {n: np.zeros(spec.expected_shape(n)) for n in spec.param_names()})


def test_empty_vocabulary_is_refused():
    with pytest.raises(ValueError, match="empty"):
        Tokenizer([], "char")


def test_non_string_vocabulary_entry_is_refused():
    with pytest.raises(ValueError, match="entry 1"):
        Tokenizer(["a", 3, "b"], "char")


def test_text_model_has_a_tokenizer_of_its_kind():
    assert text_net(WORDS, "word").tokenizer.kind == "word"
    assert text_net(CHARS, "char").tokenizer.kind == "char"
    assert text_net(CHARS, "char").input == "text"
