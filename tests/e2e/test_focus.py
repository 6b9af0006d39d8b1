"""colah's focus, whole and both ways: a step card lights every box, op and line of its step (and nothing else), a box
or op of the diagram lights the card of its step, the walk lights the steps in turn, the diagram's explanations are
reachable by keyboard, and a card's arithmetic checks out as it is shown."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from .conftest import assert_clean, wait_diagram

pytestmark = pytest.mark.e2e

# What each card must light, per cell type: the boxes and ops (data-part), the lines by the value they carry ("xh" is
# the concatenation [h_{t−1}, x_t] feeding a learned layer) and the x_t / h_t circles. Written from colah's figures
# and each card's equations, not read from the page.
_LSTM = [
    # 1 forget: f = σ(W_f·[h_{t−1}, x_t] + b_f) and f·C_{t−1}
    {"parts": {"f", "f_c_prev"}, "lines": {"h_prev", "xh", "f", "c_prev", "f_c_prev"}, "io": {"x"}},
    # 2 input: i, C̃ and i·C̃
    {"parts": {"i", "c_tilde", "i_c_tilde"}, "lines": {"h_prev", "xh", "i", "c_tilde", "i_c_tilde"}, "io": {"x"}},
    # 3 update: C_t = f·C_{t−1} + i·C̃ (the top line, its × and +, and the gate lines rising into them)
    {
        "parts": {"f_c_prev", "i_c_tilde", "c"},
        "lines": {"c_prev", "f", "f_c_prev", "i", "c_tilde", "i_c_tilde", "c"},
        "io": set(),
    },
    # 4 output: o, tanh(C_t), o·tanh(C_t) = h_t
    {"parts": {"o", "tanh_c", "h"}, "lines": {"h_prev", "xh", "o", "c", "tanh_c", "h"}, "io": {"x", "h"}},
]
_COUPLED = [dict(s) for s in _LSTM]
# coupled input: i = 1 − f, so the forget layer feeds the 1− op
_COUPLED[1] = {
    "parts": {"f", "i", "c_tilde", "i_c_tilde"},
    "lines": {"h_prev", "xh", "f", "i", "c_tilde", "i_c_tilde"},
    "io": {"x"},
}
LIGHTS = {
    "recall-lstm": ("lstm", _LSTM),
    "recall-peephole": ("peephole", _LSTM),
    "recall-coupled": ("coupled", _COUPLED),
    "recall-gru": (
        "gru",
        [
            {"parts": {"z"}, "lines": {"h_prev", "xh", "z"}, "io": {"x"}},
            {"parts": {"r", "r_h_prev"}, "lines": {"h_prev", "xh", "r", "r_h_prev"}, "io": {"x"}},
            {"parts": {"h_tilde"}, "lines": {"xh", "r_h_prev", "h_tilde"}, "io": {"x"}},
            {
                "parts": {"one_minus_z", "one_minus_z_h_prev", "z_h_tilde", "h"},
                "lines": {"h_prev", "z", "one_minus_z", "one_minus_z_h_prev", "h_tilde", "z_h_tilde", "h"},
                "io": {"h"},
            },
        ],
    ),
    "recall-rnn": ("rnn", [{"parts": {"h"}, "lines": {"h_prev", "xh", "h"}, "io": {"x", "h"}}]),
}
#: The card (0-based) each box or op of the diagram lights when hovered: the first step it belongs to.
_LSTM_CARD = {"f": 0, "f_c_prev": 0, "i": 1, "c_tilde": 1, "i_c_tilde": 1, "c": 2, "o": 3, "tanh_c": 3, "h": 3}
CARD_OF = {
    "recall-lstm": _LSTM_CARD,
    "recall-peephole": _LSTM_CARD,
    "recall-coupled": {k: v for k, v in _LSTM_CARD.items() if k != "i"} | {"i": 1},
    "recall-gru": {
        "z": 0,
        "r": 1,
        "r_h_prev": 1,
        "h_tilde": 2,
        "one_minus_z": 3,
        "one_minus_z_h_prev": 3,
        "z_h_tilde": 3,
        "h": 3,
    },
    "recall-rnn": {"h": 0},
}

#: What the diagram lights now: boxes/ops, line keys, x/h circles, and the boxes whose input bus ends lit below them.
_LIT_JS = """() => {
  const svg = document.querySelector('[data-testid="diagram"] svg');
  const lit = [...svg.querySelectorAll(".dg-lit")];
  const fed = [...svg.querySelectorAll(".dg-box")].filter((box) => {
    const r = box.querySelector("rect").getBBox();
    return lit.some((g) => {
      if (g.dataset.key !== "xh") return false;
      const path = g.querySelector("path:not(.dg-casing)");
      const end = path.getPointAtLength(path.getTotalLength());
      return Math.abs(end.x - (r.x + r.width / 2)) < 2 && Math.abs(end.y - (r.y + r.height)) < 2;
    });
  }).map((box) => box.dataset.part);
  // no lit line floats: at least one of its ends reaches a lit box, op, circle or dot, another lit line, or leaves
  // the module (a step's lines may start at an earlier step's box or carry its result on into a later step's op)
  const module = svg.querySelector(".dg-module").getBBox();
  const anchors = lit.filter((e) => e.matches(".dg-part, .dg-io, .dg-dot")).map((e) => e.getBBox());
  const strokes = lit.filter((e) => e.classList.contains("dg-ln")).map((g) => g.querySelector("path:not(.dg-casing)"));
  const near = (p, b, d) => p.x >= b.x - d && p.x <= b.x + b.width + d && p.y >= b.y - d && p.y <= b.y + b.height + d;
  const loose = [];
  for (const path of strokes) {
    const head = path.parentNode.querySelector(".dg-head");
    const ends = [path.getPointAtLength(0), head ? head.points[0] : path.getPointAtLength(path.getTotalLength())];
    const out = (p) => p.x < module.x || p.x > module.x + module.width;
    const reached = ends.some((p) => out(p) || anchors.some((b) => near(p, b, 2.5))
      || strokes.some((q) => q !== path && q.isPointInStroke(new DOMPoint(p.x, p.y))));
    const [x0, y0] = [Math.round(ends[0].x), Math.round(ends[0].y)];
    if (!reached) loose.push(`${path.parentNode.dataset.key} from (${x0}, ${y0})`);
  }
  return {
    loose,
    focusing: svg.classList.contains("dg-focusing"),
    parts: [...new Set(lit.filter((e) => e.dataset.part).map((e) => e.dataset.part))],
    lines: [...new Set(lit.filter((e) => e.classList.contains("dg-ln")).map((e) => e.dataset.key))],
    io: lit.filter((e) => e.classList.contains("dg-io")).map((e) => (e.classList.contains("dg-x") ? "x" : "h")),
    boxes: lit.filter((e) => e.classList.contains("dg-box")).map((e) => e.dataset.part),
    fed,
  };
}"""


#: For each part: the cards lit while the pointer is on it, and how many stay lit once it leaves.
_CARD_OF_JS = """(parts) => {
  const cards = [...document.querySelectorAll('[data-testid="steps"] .step')];
  const out = {};
  for (const part of parts) {
    const g = document.querySelector(`[data-testid="diagram"] .dg-part[data-part="${part}"]`);
    g.dispatchEvent(new PointerEvent("pointerenter"));
    const lit = cards.flatMap((c, k) => (c.classList.contains("step-lit") ? [k] : []));
    g.dispatchEvent(new PointerEvent("pointerleave"));
    out[part] = [lit, cards.filter((c) => c.classList.contains("step-lit")).length];
  }
  return out;
}"""


def lit_now(page) -> dict:
    got = page.evaluate(_LIT_JS)
    return {k: set(v) if isinstance(v, list) and k != "loose" else v for k, v in got.items()}


@pytest.mark.parametrize("model_id", list(LIGHTS))
def test_each_card_lights_its_whole_step_and_each_box_lights_its_card(page, server, model_id):
    cell, expected = LIGHTS[model_id]
    page.goto(f"{server}/#model={model_id}")
    wait_diagram(page, cell)
    cards = page.locator('[data-testid="steps"] .step')
    expect(cards).to_have_count(len(expected))
    for k, want in enumerate(expected):
        cards.nth(k).hover()
        got = lit_now(page)
        assert got["focusing"], f"{model_id} card {k}: the diagram does not focus"
        for what in ("parts", "lines", "io"):
            assert got[what] == want[what], (
                f"{model_id} card {k} lights {what} {sorted(got[what])}: "
                f"missing {sorted(want[what] - got[what])}, extra {sorted(got[what] - want[what])}"
            )
        assert not got["loose"], f"{model_id} card {k}: lit lines that touch nothing lit: {got['loose']}"
        # the input bus lights exactly the stretches that feed the lit learned layers
        assert got["fed"] == got["boxes"], f"{model_id} card {k}: bus feeds {got['fed']}, boxes lit {got['boxes']}"
    page.mouse.move(1, 1)
    expect(page.locator('[data-testid="diagram"] svg')).not_to_have_class(re.compile("dg-focusing"))

    # the other way: a box or op lights its step's card (and only it); one real hover, then the pointer's events
    page.locator(
        '[data-testid="diagram"] .dg-part[data-part="c"], [data-testid="diagram"] .dg-part[data-part="h"]'
    ).first.hover()
    expect(page.locator(".step.step-lit")).to_have_count(1)
    page.mouse.move(1, 1)
    expect(page.locator(".step.step-lit")).to_have_count(0)
    got = page.evaluate(_CARD_OF_JS, list(CARD_OF[model_id]))
    for part, k in CARD_OF[model_id].items():
        assert got[part][0] == [k], f"{model_id}: hovering {part} lights cards {got[part][0]}, not card {k}"
        assert got[part][1] == 0, f"{model_id}: leaving {part} leaves a card lit"
    assert_clean(page, server)


#: Each step t in turn: the cards' rows as shown (text, and each number's text and exact value).
_CARDS_JS = """() => {
  const s = window.gatescope.state;
  const out = [];
  for (let t = 0; t < s.T; t++) {
    s.setT(t);
    out.push([...document.querySelectorAll('[data-testid="steps"] .step')].map((li) =>
      [...li.querySelectorAll(".eq")].filter((eq) => !eq.hidden).map((eq) => ({
        text: eq.textContent,
        nums: [...eq.querySelectorAll(".num")].map((n) => [n.textContent, Number(n.dataset.value)]),
      }))));
  }
  return out;
}"""

_NUMBER = re.compile(r"^\(?(−?\d+(?:\.\d+)?)\)?$")


def _parse(text: str) -> tuple[float, int]:
    m = _NUMBER.match(text.strip())
    assert m, f"not a number: {text!r}"
    s = m.group(1)
    return float(s.replace("−", "-")), len(s.split(".")[1]) if "." in s else 0


def _side(text: str) -> list[list[tuple[float, int]]] | None:
    """A side of an '=' made only of numbers: a sum (' + ') of products ('·'); None for a symbolic side."""
    if not re.fullmatch(r"[\d.\s·+()−]+", text.strip()):
        return None
    return [[_parse(f) for f in term.split("·")] for term in text.strip().split(" + ")]


def check_card_arithmetic(cards: list, where: str) -> int:
    """Every number is the model's to its shown decimals, and every '=' between numbers holds as shown: the left
    side, rounded to the right side's decimals, is the right side. Returns the equalities checked."""
    checked = 0
    for rows in cards:
        for row in rows:
            for text, value in row["nums"]:
                shown, d = _parse(text)
                assert abs(shown - value) <= 0.5 * 10**-d + 1e-12, f"{where}: {text} is not {value}"
            sides = [_side(s) for s in row["text"].split(" = ")]
            for a, b in zip(sides, sides[1:], strict=False):
                if a is None or b is None:
                    continue
                if len(b) == 1 and len(b[0]) == 1:
                    pairs = [(a, b[0][0])]  # a sum of products = one number
                else:  # f·C + i·C̃ = (f·C) + (i·C̃): term by term, as a reader checks it
                    assert len(a) == len(b) and all(len(term) == 1 for term in b), (
                        f"{where}: cannot read {row['text']!r}"
                    )
                    pairs = [([term], right[0]) for term, right in zip(a, b, strict=True)]
                for left, (value, d) in pairs:
                    worked = sum(_prod([v for v, _ in term]) for term in left)
                    assert abs(worked - value) <= 0.5 * 10**-d + 1e-9, (
                        f"{where}: {row['text']!r} does not hold as shown ({worked} is not {value} to {d} decimals)"
                    )
                    checked += 1
    return checked


def _prod(xs: list[float]) -> float:
    out = 1.0
    for x in xs:
        out *= x
    return out


@pytest.mark.parametrize(
    "model_id,cell", [("recall-peephole", "peephole"), ("recall-lstm", "lstm"), ("recall-gru", "gru")]
)
def test_the_cards_arithmetic_holds_as_shown_at_every_step(page, server, model_id, cell):
    page.goto(f"{server}/#model={model_id}")
    view = wait_diagram(page, cell)
    steps = page.evaluate(_CARDS_JS)
    T = len(steps)
    checked = 0
    for t, cards in enumerate(steps):
        assert cards and all(rows for rows in cards), f"{model_id} t={t}: a card shows no numbers"
        checked += check_card_arithmetic(cards, f"{model_id} unit {view['unit']} t={t}")
    assert checked >= T * (4 if cell == "gru" else 5), f"only {checked} equalities checked over {T} steps"
    assert_clean(page, server)


def test_keyboard_reaches_the_diagrams_explanations_and_the_walk_lights_each_step(page, server):
    page.goto(f"{server}/#model=recall-lstm")
    wait_diagram(page, "lstm")
    explain = page.get_by_test_id("diagram-explain")
    expect(explain).to_contain_text("Tab")
    page.locator("#diagram-svg").focus()
    # Tab from the export buttons into the diagram: the first box takes focus and its equation shows under it
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.classList.contains('dg-part')"):
            break
    part = page.evaluate("() => document.activeElement.dataset.part")
    assert part == "f", f"Tab reached {part!r}, not the forget gate"
    # Chromium lets an SVG element with focus listeners take focus; other browsers need the tabindex
    expect(page.locator('[data-testid="diagram"] .dg-part[data-part="f"]')).to_have_attribute("tabindex", "0")
    expect(explain).to_have_text(re.compile(r"^forget gate: f = σ\(W_f"))
    expect(page.locator('.step[data-gate="f"]')).to_have_class(re.compile(r"\bstep-lit\b"))
    page.keyboard.press("Tab")
    expect(explain).to_have_text(re.compile(r"^input gate: i = σ"))
    expect(page.locator('.step[data-gate="i"]')).to_have_class(re.compile(r"\bstep-lit\b"))
    page.keyboard.press("Escape")
    expect(explain).to_contain_text("Tab")
    assert not page.evaluate("() => document.activeElement.classList.contains('dg-part')"), "Escape kept the focus"
    expect(page.locator(".step.step-lit")).to_have_count(0)

    # the walk: card 1, then card 2, each lighting its whole step in the diagram
    page.get_by_test_id("steps-walk").click()
    cards = page.locator('[data-testid="steps"] .step')
    expect(cards.nth(0)).to_have_class(re.compile(r"\bstep-lit\b"))
    assert lit_now(page)["parts"] == _LSTM[0]["parts"]
    expect(cards.nth(1)).to_have_class(re.compile(r"\bstep-lit\b"), timeout=4000)
    assert lit_now(page)["parts"] == _LSTM[1]["parts"]
    page.get_by_test_id("steps-walk").click()  # stops it
    expect(page.locator(".step.step-lit")).to_have_count(0)
    assert not lit_now(page)["focusing"]
    assert_clean(page, server)


def test_legends_sit_beside_what_they_explain_and_stay_hidden_once_dismissed(page, server):
    page.goto(f"{server}/#model=recall-lstm")
    wait_diagram(page, "lstm")
    beside = {"diagram": ".diagram-panel", "unit": "#unit-legend", "heatmaps": ".heatmaps-panel"}
    for legend_id, where in beside.items():
        legend = page.locator(f'{where} [data-testid="legend-{legend_id}"] .legend-body')
        expect(legend).to_be_visible()
    expect(page.locator('[data-testid="legend-diagram"]')).to_contain_text("yellow box")
    expect(page.locator('[data-testid="legend-unit"]')).to_contain_text("separation")
    expect(page.locator('[data-testid="legend-heatmaps"]')).to_contain_text("asinh")
    # hidden with ×, still hidden after a reload, back with ?
    page.locator('[data-testid="legend-diagram"] .legend-hide').click()
    expect(page.locator('[data-testid="legend-diagram"] .legend-body')).to_be_hidden()
    page.reload()
    wait_diagram(page, "lstm")
    expect(page.locator('[data-testid="legend-diagram"] .legend-body')).to_be_hidden()
    expect(page.locator('[data-testid="legend-unit"] .legend-body')).to_be_visible()
    page.locator('[data-testid="legend-diagram"] .legend-show').click()
    expect(page.locator('[data-testid="legend-diagram"] .legend-body')).to_be_visible()
    assert_clean(page, server)
