"""The tokenizers people train with: Hugging Face tokenizer.json files (BPE, WordPiece, Unigram) give exactly the
ids of the ``tokenizers`` library, a BPE PyTorch model traces as torch ran it, pieces are shown as their text; a
PyTorch word_language_model vocabulary ({token: id} + ``eol``) tokenizes as its script; vocabulary files are
refused with the ids and keys named. Fixtures: tests/fixtures/make_tokenizers.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import model
from model import FormatError, Network, Spec, UnknownTokenError
from model.formats.vocab import parse_vocab, read_vocab
from model.tokenizer import Tokenizer, make_tokenizer

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "tokenizers"
ENCODINGS = json.loads((FIX / "encodings.json").read_text(encoding="utf-8"))
CASES = [(name, case["text"]) for name, cases in ENCODINGS.items() for case in cases]


def hf(name: str):
    v = read_vocab(FIX / f"{name}.json")
    return make_tokenizer(v["vocab"], v["tokenizer"], v["unk"], None, v["tokenizer_json"])


@pytest.mark.parametrize(("name", "text"), CASES)
def test_a_tokenizer_json_gives_the_ids_and_pieces_the_tokenizers_library_gives(name, text):
    tokenizers = pytest.importorskip("tokenizers")
    case = next(c for c in ENCODINGS[name] if c["text"] == text)
    enc = hf(name).encode(text)
    assert enc.ids.tolist() == case["ids"]  # recorded when the fixture was trained
    assert enc.tokens == case["tokens"]
    own = tokenizers.Tokenizer.from_file(str(FIX / f"{name}.json")).encode(text)  # and the installed library
    assert enc.ids.tolist() == own.ids


def test_a_bpe_pytorch_model_with_its_tokenizer_json_traces_as_torch_ran_it(tmp_path):
    ref = np.load(FIX / "lstm_bpe.npz")
    shutil.copy(FIX / "lstm_bpe.safetensors", tmp_path / "model.safetensors")
    shutil.copy(FIX / "bpe.json", tmp_path / "tokenizer.json")  # a Hugging Face folder: found beside the weights
    net = model.load(tmp_path / "model.safetensors")
    assert net.spec.tokenizer == "hf" and len(net.vocab) == ref["probs"].shape[1]
    tr = net.trace(str(ref["text"]))
    assert net.tokenizer.encode(str(ref["text"])).ids.tolist() == ref["ids"].tolist()
    np.testing.assert_allclose(tr.layers[0]["h"], ref["output"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(tr.probs, ref["probs"], rtol=0, atol=1e-5)


def test_pieces_are_shown_as_their_text():
    bpe = hf("bpe").encode("The cat sat.\nA dog.")
    assert bpe.tokens[:3] == ["The", "Ġcat", "Ġsat"] and "Ċ" in bpe.tokens
    assert bpe.display == ["The", " cat", " sat", ".", "\n", "A", " dog", "."]
    assert "".join(bpe.display) == "The cat sat.\nA dog."  # byte-level pieces are the text, byte for byte
    wp = hf("wordpiece").encode("the catalog sat")
    assert wp.tokens == ["the", "cat", "##a", "##l", "##og", "sat"]
    assert "".join(wp.display) == "the catalog sat"  # ## continuations joined to their word
    uni = hf("unigram").encode("the cat")
    assert "▁cat" in uni.tokens and "".join(uni.display) == "the cat"
    assert hf("bpe").vocab_display()[hf("bpe").vocab.index("Ġcat")] == " cat"  # predictions too


def test_a_byte_of_a_character_shows_its_bytes_and_unknown_pieces_are_reported():
    bpe = hf("bpe").encode("dö")
    assert bpe.display[-2:] == ["\\xc3", "\\xb6"] and bpe.unknown == []  # every byte is a piece: nothing unknown
    wp = hf("wordpiece").encode("a zebra!")
    assert wp.tokens[wp.unknown[0]] == "[UNK]"  # as the char and word tokenizers: the position is reported
    uni = hf("unigram").encode("Le café")
    assert [uni.display[p] for p in uni.unknown] == ["L", "fé"]  # Unigram keeps the text it could not read


def test_a_bpe_without_an_unknown_token_refuses_characters_it_would_drop():
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["abc abd"], trainers.BpeTrainer(vocab_size=20))
    assert tok.encode("ab xb").tokens == ["ab", "b"]  # the library drops the x silently
    v = parse_vocab(json.loads(tok.to_str()))
    ours = make_tokenizer(v["vocab"], "hf", v["unk"], None, v["tokenizer_json"])
    with pytest.raises(UnknownTokenError, match="'x' at 1"):
        ours.encode("ab xb")


def test_the_embedding_and_the_tokenizer_json_must_agree_on_the_vocabulary_size():
    with pytest.raises(FormatError, match=r"the tokenizer\.json has 84 tokens, the nn\.Embedding has 300 rows"):
        model.load(FIX / "lstm_bpe.safetensors", vocab=FIX / "wordpiece.json")


def test_a_native_file_keeps_the_tokenizer_json(tmp_path):
    net = model.load(FIX / "lstm_bpe.safetensors", vocab=FIX / "bpe.json")
    back = model.load(model.save(net, tmp_path / "m.safetensors"))
    assert back.spec.tokenizer == "hf" and back.spec.tokenizer_json == net.spec.tokenizer_json
    text = "The dog saw the mat."
    assert back.tokenizer.encode(text).ids.tolist() == net.tokenizer.encode(text).ids.tolist()
    np.testing.assert_array_equal(back.trace(text).probs, net.trace(text).probs)


# --- words ------------------------------------------------------------------------------------------------
def test_a_word_language_model_vocabulary_tokenizes_as_its_training_script():
    ref = json.loads((FIX / "wordlm.json").read_text())
    v = read_vocab(FIX / "wordlm.vocab.json")  # {token: id}, as word_language_model's Dictionary.word2idx
    assert v["tokenizer_options"] == {"eol": "<eos>"}
    tok = make_tokenizer(v["vocab"], v["tokenizer"], v["unk"], v["tokenizer_options"])
    enc = tok.encode(ref["text"])
    assert enc.tokens == ["The", "cat", "sat.", "<eos>", "A", "dog.", "<eos>"]
    assert enc.ids.tolist() == ref["ids"]  # data.py's own ids for the same text


@pytest.mark.parametrize(
    ("options", "text", "tokens"),
    [
        ({"eol": "<eos>"}, "a b\n\nc\n", ["a", "b", "<eos>", "<eos>", "c", "<eos>"]),  # an empty line is an <eos>
        ({"eol": "<eos>"}, "a b", ["a", "b", "<eos>"]),  # the last line ends too, as a file's
        ({"lowercase": True}, "The CAT", ["the", "cat"]),
        ({"split_punct": True}, "sat. (don't)", ["sat", ".", "(", "don", "'", "t", ")"]),  # basic_english's way
        ({"lowercase": True, "strip_punct": True}, "The cat, sat!", ["the", "cat", "sat"]),  # Keras' default
        ({}, "the cat.\nsat", ["the", "cat.", "sat"]),  # plain whitespace words: newlines dropped
    ],
)
def test_word_options_split_as_the_training_scripts(options, text, tokens):
    vocab = sorted({*tokens, "<unk>"})
    assert Tokenizer(vocab, "word", options=options).split(text) == tokens


def test_word_options_are_read_from_the_vocabulary_file_and_kept_by_a_native_file(tmp_path):
    v = parse_vocab(
        {"tokens": ["<unk>", "the", "cat", ".", "<eos>"], "lowercase": True, "split_punct": True, "eol": "<eos>"}
    )
    spec = Spec("lstm", 5, 3, output_size=5, **v)
    rng = np.random.default_rng(0)
    net = Network(spec, {n: rng.normal(0, 0.5, spec.expected_shape(n)) for n in spec.param_names()})
    back = model.load(model.save(net, tmp_path / "w.safetensors"))
    assert back.trace("The cat.").tokens == ["the", "cat", ".", "<eos>"]
    assert back.tokenizer.describe() == {
        "tokenizer": "word",
        "tokenizer_options": {"lowercase": True, "split_punct": True, "strip_punct": False, "eol": "<eos>"},
    }


# --- vocabulary files ------------------------------------------------------------------------------------
def test_a_token_id_map_becomes_the_list_in_id_order():
    assert parse_vocab({"b": 1, "<unk>": 0, "a": 2})["vocab"] == ["<unk>", "b", "a"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"a": 0, "b": 2}, r"ids must be exactly 0\.\.1; ids \[2\] are outside it and \[1\] are missing"),
        ({"a": 0, "b": 0, "c": 1}, r"ids given to more than one token \(id 0: 'a', 'b'\)"),
        ({"a": 0, "b": "1"}, r"integer ids; not integers: 'b': '1'"),
        ({"tokens": ["a"], "lower_case": True}, r"unknown key 'lower_case'"),
        ({"tokens": ["a", "b"], "eol": "<eos>"}, r"end-of-line token '<eos>' \(eol\) is not in the vocabulary"),
        ({"tokens": ["a", "b"], "lowercase": "yes"}, r"lowercase must be true or false"),
        ({"tokens": ["a"], "tokenizer": "char", "lowercase": True}, r"options of the word tokenizer"),
        ({"model": {"type": "BPE", "vocab": 3}}, r"not a tokenizer\.json the tokenizers library reads"),
    ],
)
def test_a_vocabulary_file_that_does_not_fit_is_refused_naming_what(data, message):
    with pytest.raises(FormatError, match=message):
        parse_vocab(data, "v.json")
