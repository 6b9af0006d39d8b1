"""Tasks: batches (shapes, masks, streams), determinism, the dyck rules, the recall layout, the code split
and vocabulary, and held-out metrics recomputed with tiny networks and hand-made stand-ins."""

from __future__ import annotations

import sysconfig
import zlib
from itertools import islice
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from model import Network, Spec
from model.tasks import (
    DISTRACTORS,
    MEMORY,
    QUERY,
    THRESHOLD,
    Batch,
    CodeTask,
    DyckTask,
    RecallTask,
    dyck_allowed,
    dyck_depth,
    get_task,
    is_heldout,
)


@pytest.fixture(scope="module")
def code() -> CodeTask:
    return CodeTask(max_chars=200_000, eval_chars=20_000)


@pytest.fixture(params=["code", "dyck", "recall"])
def task(request, code):
    return {"code": code, "dyck": DyckTask(), "recall": RecallTask()}[request.param]


def tiny_net(vocab: list[str], unk: str | None, H: int = 8, seed: int = 0, forget_bias: float = 0.0) -> Network:
    """Random weights; a large ``forget_bias`` keeps the cell state for hundreds of steps."""
    spec = Spec("lstm", 5, H, vocab=vocab, tokenizer="char", unk=unk, embedding=True, output_size=len(vocab))
    rng = np.random.default_rng(seed)
    params = {n: rng.normal(0, 0.5, spec.expected_shape(n)) for n in spec.param_names()}
    params["layers.0.b_f"] += forget_bias
    return Network(spec, params)


class StandIn:
    """A fake network: ``trace(text)`` gives the probabilities ``rule(text)`` (T, V), and a state to pass on."""

    def __init__(self, vocab, rule):
        self.vocab, self.rule = vocab, rule

    def trace(self, text, state=None):
        return SimpleNamespace(probs=self.rule(text), state=state)


def decode(task, ids) -> str:
    return "".join(task.vocab[k] for k in ids)


def sequences(task, batch: Batch) -> list[str]:
    """The sequences of a dyck or recall batch: the inputs up to the last scored step, and its target."""
    out = []
    for x, y, mask in zip(batch.x, batch.y, batch.mask):
        n = np.flatnonzero(mask).max() + 1
        out.append(decode(task, x[:n]) + task.vocab[y[n - 1]])
    return out


# --------------------------------------------------------------------------------------------
# Every task
# --------------------------------------------------------------------------------------------
def test_get_task_builds_each_task_and_names_the_valid_ones_when_asked_for_another():
    assert isinstance(get_task("dyck", max_len=20), DyckTask)
    assert get_task("recall", min_gap=5, max_gap=9).max_gap == 9
    with pytest.raises(ValueError, match="code, dyck, recall"):
        get_task("copy")


def test_batches_have_the_promised_shapes_types_and_masks(task):
    for b in islice(task.batches(np.random.default_rng(0), 6, 40), 3):
        assert isinstance(b, Batch) and isinstance(b.reset, bool)
        assert b.x.dtype == b.y.dtype == np.int64 and b.mask.dtype == np.float32
        assert b.x.shape == b.y.shape == b.mask.shape and b.x.shape[0] == 6
        assert set(np.unique(b.mask)) <= {0.0, 1.0} and b.mask.sum(axis=1).min() >= 1
        assert 0 <= b.x.min() and max(b.x.max(), b.y.max()) < len(task.vocab)
        # the target is the next input, up to the last scored step (padding follows it)
        for x, y, mask in zip(b.x, b.y, b.mask):
            n = np.flatnonzero(mask).max() + 1
            np.testing.assert_array_equal(x[1:n], y[: n - 1])


def test_the_same_seed_gives_the_same_batches_and_held_out_data(task):
    def first(seed):
        return [(b.x, b.y, b.mask, b.reset) for b in islice(task.batches(np.random.default_rng(seed), 4, 30), 3)]

    for a, b in zip(first(5), first(5), strict=True):
        for u, v in zip(a, b, strict=True):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(first(5), first(6)))
    if task.name != "code":
        assert task.heldout(7) == task.heldout(7) and task.heldout(7) != task.heldout(8)
        # held-out data is not what a trainer seeded alike is handed first
        trained = sequences(task, next(task.batches(np.random.default_rng(7), 4, 30)))
        held = task.heldout(7)
        assert (held if task.name == "dyck" else held[0])[:4] != trained


def test_evaluate_refuses_a_network_with_another_vocabulary(task):
    net = tiny_net(["x", "y", "z"], None)
    with pytest.raises(ValueError, match="vocabulary"):
        task.evaluate(net)


# --------------------------------------------------------------------------------------------
# dyck
# --------------------------------------------------------------------------------------------
def test_dyck_depth_and_allowed_sets_on_hand_written_prefixes():
    np.testing.assert_array_equal(dyck_depth("(()"), [1, 2, 1])
    np.testing.assert_array_equal(dyck_allowed("(()"), [[1, 1, 0], [1, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(dyck_depth("()$("), [1, 0, 0, 1])
    np.testing.assert_array_equal(dyck_allowed("()$("), [[1, 1, 0], [1, 0, 1], [1, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(
        dyck_allowed("(())()"), [[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 1, 0], [1, 0, 1]]
    )
    with pytest.raises(ValueError, match="'x'"):
        dyck_depth("(x)")


def test_dyck_training_strings_are_balanced_or_cut_at_max_len():
    task = DyckTask(max_len=20)
    strings = [s for b in islice(task.batches(np.random.default_rng(1), 50, 0), 20) for s in sequences(task, b)]
    cut = 0
    for s in strings:
        depth = dyck_depth(s)
        assert 2 <= len(s) <= 20 and depth.min() >= 0
        if s.endswith("$"):
            assert s.count("$") == 1 and depth[-1] == 0
        else:  # unfinished at max_len: cut, never forced closed
            assert len(s) == 20 and "$" not in s
            cut += 1
    assert 0 < cut < len(strings)
    assert max(len(s) for s in strings if s.endswith("$")) > 15  # the length range is used


def test_dyck_held_out_strings_reach_twice_the_training_length():
    task = DyckTask()
    held = task.heldout(1234)
    assert len(held) == 500
    long = [s for s in held if len(s) > 50]
    assert len(long) == 250 and max(map(len, long)) <= 100
    assert all(dyck_depth(s)[-1] == 0 and dyck_depth(s).min() >= 0 and s.count("$") == 1 for s in held)


def test_dyck_an_oracle_scores_every_step_and_a_uniform_guess_none():
    task = DyckTask(eval_strings=100)

    def oracle(text):
        allowed = dyck_allowed(text).astype(np.float32)
        return allowed / allowed.sum(axis=1, keepdims=True)

    m = task.evaluate(StandIn(task.vocab, oracle))
    assert m["step_accuracy"] == 1.0 and m["string_accuracy"] == 1.0
    assert 50 < m["max_len_eval"] <= 100 and m["max_depth_eval"] >= 8
    m = task.evaluate(StandIn(task.vocab, lambda text: np.full((len(text), 3), 1 / 3)))
    assert m["step_accuracy"] == 0.0 and m["string_accuracy"] == 0.0  # it calls all three symbols possible
    # a symbol just under the threshold counts as predicted impossible
    almost = lambda text: np.where(dyck_allowed(text), 0.5 - THRESHOLD / 2, THRESHOLD * 0.99)  # noqa: E731
    assert task.evaluate(StandIn(task.vocab, almost))["step_accuracy"] == 1.0
    at = lambda text: np.where(dyck_allowed(text), 0.45, THRESHOLD)  # noqa: E731
    assert task.evaluate(StandIn(task.vocab, at))["step_accuracy"] == 1.0  # "more than", not "at least"


def test_dyck_evaluate_on_a_tiny_network_matches_a_recount():
    task = DyckTask(eval_strings=60)
    net = tiny_net(task.vocab, None)
    m = task.evaluate(net, seed=3)
    steps = [((net.trace(s[:-1]).probs > THRESHOLD) == dyck_allowed(s[:-1])).all(1) for s in task.heldout(3)]
    assert m["step_accuracy"] == pytest.approx(np.concatenate(steps).mean())
    assert m["string_accuracy"] == pytest.approx(np.mean([s.all() for s in steps]))


# --------------------------------------------------------------------------------------------
# recall
# --------------------------------------------------------------------------------------------
def test_recall_sequences_hold_a_symbol_a_gap_of_distractors_and_a_query_scored_only_there():
    task = get_task("recall", min_gap=5, max_gap=9)
    gaps = set()
    for b in islice(task.batches(np.random.default_rng(2), 16, 0), 10):
        for x, y, mask in zip(b.x, b.y, b.mask):
            (q,) = np.flatnonzero(mask)  # exactly one scored step
            text = decode(task, x[: q + 1])
            assert text[0] in MEMORY and text[-1] == QUERY and set(text[1:-1]) <= set(DISTRACTORS)
            assert task.vocab[y[q]] == text[0]  # the target there is the first symbol
            gaps.add(len(text) - 2)
    assert gaps == set(range(5, 10))


def test_recall_held_out_gaps_are_the_usual_range_and_a_longer_one():
    usual, long = RecallTask().heldout(1234)
    assert len(usual) == len(long) == 1000
    assert {len(s) - 3 for s in usual} <= set(range(50, 61)) and {len(s) - 3 for s in long} <= set(range(61, 121))
    assert all(s[0] == s[-1] and s[-2] == QUERY for s in usual + long)
    with pytest.raises(ValueError, match="min_gap"):
        RecallTask(min_gap=10, max_gap=5)


def test_recall_evaluate_scores_a_perfect_memory_fully_and_a_fixed_guess_by_chance():
    task = RecallTask(eval_sequences=200)

    def memory(text):
        probs = np.full((len(text), len(task.vocab)), 0.01)
        probs[-1, task.vocab.index(text[0])] = 0.9
        return probs

    assert task.evaluate(StandIn(task.vocab, memory)) == {"accuracy": 1.0, "accuracy_long": 1.0, "min_gap": 50.0}
    guess_a = task.evaluate(StandIn(task.vocab, lambda text: np.eye(len(task.vocab))[[0] * len(text)]))
    assert 0.15 < guess_a["accuracy"] < 0.35 and 0.15 < guess_a["accuracy_long"] < 0.35
    m = task.evaluate(tiny_net(task.vocab, None))
    assert 0 <= m["accuracy"] <= 1 and 0 <= m["accuracy_long"] <= 1


# --------------------------------------------------------------------------------------------
# code
# --------------------------------------------------------------------------------------------
def test_code_split_is_disjoint_stable_and_keeps_test_suites_out(code):
    assert not set(code.train_files) & set(code.heldout_files)
    assert all(zlib.crc32(p.encode()) % 10 == 0 for p in code.heldout_files)
    assert not any(is_heldout(p) for p in code.train_files)
    assert 0.05 < len(code.heldout_files) / len(code.train_files + code.heldout_files) < 0.15
    for p in code.train_files + code.heldout_files:
        parts = Path(p).parts
        assert p.endswith(".py") and not {"test", "tests", "idle_test", "site-packages"} & set(parts)
    root = Path(sysconfig.get_paths()["stdlib"])
    assert (root / code.heldout_files[0]).read_text(encoding="utf-8").startswith(code.heldout_text(100))
    again = CodeTask()
    assert again.train_files == code.train_files and again.heldout_files == code.heldout_files


def test_code_vocabulary_is_fixed_and_covers_the_held_out_text(code):
    assert code.vocab[0] == "<unk>" and code.vocab == CodeTask().vocab
    assert code.vocab[1:] == sorted(code.vocab[1:]) and all(len(ch) == 1 for ch in code.vocab[1:])
    assert {"\n", " ", "(", "_", "z", "~"} <= set(code.vocab)
    held = code.heldout_text()
    known = np.isin(np.frombuffer(held.encode("utf-32-le"), np.uint32), [ord(c) for c in code.vocab[1:]])
    assert known.mean() >= 0.999
    ids = code.encode("def f(x):\n    return x  # é")
    assert decode(code, ids) == "def f(x):\n    return x  # <unk>"


def test_code_texts_are_prefixes_of_the_whole(code):
    assert code.train_text(5000) == code.train_text()[:5000]
    assert code.heldout_text(5000) == code.heldout_text()[:5000] and len(code.heldout_text(5000)) == 5000
    assert len(code.heldout_text()) > 500_000  # held-out files are never seen: a real test set


def test_code_streams_continue_from_batch_to_batch_and_reset_once_an_epoch():
    task = CodeTask(max_chars=10_000)
    B, bptt = 4, 50
    batches = list(islice(task.batches(np.random.default_rng(0), B, bptt), 120))
    resets = [k for k, b in enumerate(batches) if b.reset]
    assert resets[:3] == [0, 49, 98]  # (10_000 - 1 - offset) // 4 streams // 50 = 49 batches an epoch
    for a, b in zip(batches, batches[1:]):
        assert np.all(b.mask == 1)
        if not b.reset:
            np.testing.assert_array_equal(b.x[:, 0], a.y[:, -1])
    # each stream is a contiguous piece of the training text
    stream = decode(task, np.concatenate([b.x[2] for b in batches[:49]]))
    assert len(stream) == 49 * bptt and stream in task.train_text(10_000)


def test_code_evaluate_matches_one_unchunked_pass_and_a_uniform_guess_scores_log2_v(code):
    net = tiny_net(code.vocab, "<unk>", forget_bias=6.0)  # remembers across the 2000-character chunks
    m = code.evaluate(net)
    text = code.heldout_text(20_000)
    probs = net.trace(text).probs
    target = code.encode(text)[1:]
    expected = -np.log2(probs[np.arange(len(target)), target].astype(np.float64)).mean()
    assert m["eval_chars"] == 20_000 and m["bits_per_char"] == pytest.approx(expected, rel=1e-6)
    uniform = StandIn(code.vocab, lambda t: np.full((len(t), len(code.vocab)), 1 / len(code.vocab)))
    assert code.evaluate(uniform)["bits_per_char"] == pytest.approx(np.log2(len(code.vocab)))
