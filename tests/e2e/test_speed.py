"""What issue 14's speed work must not change, in a real Chromium: scrubbing fast still moves every view to the
same t with the API's values (the diagram's numbers and colour strips, drawn as one canvas a strip; the step cards;
the heatmaps' cursors), and a long paste, which the text box inserts itself (picker.js), reads exactly as the
browser's own paste would."""

from __future__ import annotations

import urllib.parse

import numpy as np
from playwright.sync_api import expect

from .conftest import (
    api_card,
    api_trace,
    assert_clean,
    assert_numbers_match_api,
    blur_text_box,
    wait_diagram,
    wait_drawn,
)

TEXT = "def f(x):\n    return [x, (x + 1) * 2]\n"

#: Each colour strip of the diagram: its key and its pixels (r, g, b), read from its canvas.
_STRIPS_JS = """() => [...document.querySelectorAll('[data-testid="diagram"] .dg-strip[data-strip]')]
  .map((g) => [g, g.querySelector('canvas')])
  .filter(([g, c]) => g.getClientRects().length > 0 && c?.width && c.height)
  .map(([g, c]) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const px = []; for (let k = 0; k < d.length; k += 4) px.push([d[k], d[k + 1], d[k + 2]]);
    return [g.dataset.strip, px]; })"""

#: The CSS colours colors.js gives `values` on `key`'s scale (the cell scale up to the layer's largest |C|).
_COLOURS_JS = """async ([key, values]) => { const m = await import('/static/js/colors.js');
  const cellMax = gatescope.state.trace.cellMax(gatescope.state.layer) || 1;
  return values.map((v) => m.colourOf(key, v, cellMax).match(/\\d+/g).map(Number)); }"""

#: Per heatmap: its gate and the step its t cursor stands on (from the cursor's middle and the column width).
_CURSORS_JS = """() => [...document.querySelectorAll('[data-testid="heatmaps"] figure[data-gate]')].map((fig) => {
  const cv = fig.querySelector('canvas').getBoundingClientRect();
  const cur = fig.querySelector('.hm-cursor-t').getBoundingClientRect();
  const colW = cv.width / fig.querySelector('canvas').width;
  return [fig.dataset.gate, Math.floor((cur.left + cur.width / 2 - cv.left) / colW)]; })"""


def test_a_fast_scrub_moves_the_numbers_strips_cards_and_heatmap_cursors_to_the_same_t(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=code&text={urllib.parse.quote(TEXT)}")
    gates = api_card(server, "code")["gates"]
    trace = api_trace(server, "code", TEXT)
    T = len(trace["tokens"])
    wait_drawn(pg, gates, T)
    blur_text_box(pg)
    pg.keyboard.press("Home")
    for t in (9, 17, T - 1):
        while pg.evaluate("gatescope.state.t") < t:  # keys as fast as they go: no wait between them
            pg.keyboard.press("ArrowRight")
        view = wait_diagram(pg, "lstm", t=t)
        assert view["t"] == t
        assert_numbers_match_api(view, trace, "lstm")  # the diagram's and the step cards' numbers
        strips = dict(pg.evaluate(_STRIPS_JS))
        assert {"f", "i", "o", "c_tilde", "c"} <= set(strips), sorted(strips)
        for key in ("f", "i", "o", "c_tilde", "c"):  # each strip: every unit's value at t, in the heatmaps' colours
            values = np.asarray(trace["layers"][0][key], dtype=np.float64)[t]  # (H,)
            want = np.array(pg.evaluate(_COLOURS_JS, [key, values.tolist()]))
            got = np.array(strips[key])
            assert got.shape == want.shape == (len(values), 3), (key, got.shape)
            # the page holds the compact (16-bit) values: a shade apart at most
            assert np.abs(got - want).max() <= 8, (key, t, np.abs(got - want).max())
        cursors = pg.evaluate(_CURSORS_JS)
        assert [g for g, _ in cursors] == gates
        assert all(col == t for _, col in cursors), (t, cursors)
    assert_clean(pg, server)


def test_a_long_paste_replaces_the_selection_exactly_and_is_traced_whole(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=code&text={urllib.parse.quote(TEXT)}")
    gates = api_card(server, "code")["gates"]
    wait_drawn(pg, gates, len(TEXT))
    pasted = "".join(f"def g{k}(y):\r\n    return y * {k}\r\n" for k in range(120))  # 3,000+ characters, CRLF
    assert len(pasted) > 2000
    # select "return" in the text, then paste over it as Ctrl+V does (a paste event carrying the text)
    a = TEXT.index("return")
    got = pg.evaluate(
        """([s, a, b]) => { const box = document.querySelector('[data-testid=input]'); box.focus();
        box.setSelectionRange(a, b); const dt = new DataTransfer(); dt.setData('text/plain', s);
        const ev = new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true });
        const plain = box.dispatchEvent(ev);
        return { plain, value: box.value, caret: box.selectionStart, end: box.selectionEnd }; }""",
        [pasted, a, a + len("return")],
    )
    want = TEXT[:a] + pasted.replace("\r\n", "\n") + TEXT[a + len("return") :]
    assert got["plain"] is False  # the page inserted it (the browser's own insertion is a ~1 s task)
    assert got["value"] == want
    assert got["caret"] == got["end"] == a + len(pasted.replace("\r\n", "\n"))  # the caret after the paste
    pg.wait_for_function(  # the input event reached the live socket: traced (in 1 MB parts) and drawn
        "(T) => gatescope.state.T === T && gatescope.lastDrawn().version === gatescope.state.trace.version",
        arg=len(want),
        timeout=30_000,
    )
    assert pg.evaluate("gatescope.state.text") == want
    expect(pg.get_by_test_id("input")).to_have_value(want)
    assert_clean(pg, server)


#: Paste s over the text box's selection [a, b) as Ctrl+V does (a paste event carrying the text); the box's state after.
_PASTE_JS = """([s, a, b]) => { const box = document.querySelector('[data-testid=input]'); box.focus();
  box.setSelectionRange(a, b); const dt = new DataTransfer(); dt.setData('text/plain', s);
  const plain = box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
  return { plain, value: box.value }; }"""
#: The text box's text and selection.
_BOX_JS = """() => { const b = document.querySelector('[data-testid=input]');
  return { value: b.value, start: b.selectionStart, end: b.selectionEnd }; }"""


def wait_traced(pg, text: str) -> None:
    """Wait until the page shows the trace of `text`, drawn."""
    pg.wait_for_function(
        "(s) => gatescope.state.tracedText === s && gatescope.lastDrawn().version === gatescope.state.trace.version",
        arg=text,
        timeout=30_000,
    )


def test_undo_after_a_long_paste_restores_the_text_before_it_and_redo_the_paste(new_page, server):
    pg = new_page(1280, 720)
    pg.goto(f"{server}/#model=code&text={urllib.parse.quote(TEXT)}")
    wait_drawn(pg, api_card(server, "code")["gates"], len(TEXT))
    pasted = "".join(f"def g{k}(y):\n    return y * {k}\n" for k in range(120))  # inserted by the page itself
    a, b = TEXT.index("return"), TEXT.index("return") + len("return")
    got = pg.evaluate(_PASTE_JS, [pasted, a, b])
    want = TEXT[:a] + pasted + TEXT[b:]
    assert got == {"plain": False, "value": want}
    wait_traced(pg, want)

    pg.keyboard.press("Control+z")  # the text before the paste, what it replaced selected again (as the browser's)
    assert pg.evaluate(_BOX_JS) == {"value": TEXT, "start": a, "end": b}
    wait_traced(pg, TEXT)  # the views follow the text
    expect(pg.get_by_test_id("timestep")).to_have_attribute("data-t", str(len(TEXT) - 1))
    pg.keyboard.press("Control+Shift+z")  # redo: the paste again, the caret after it
    end = a + len(pasted)
    assert pg.evaluate(_BOX_JS) == {"value": want, "start": end, "end": end}
    wait_traced(pg, want)
    pg.keyboard.press("Meta+z")  # Cmd+Z, and Ctrl+Y to redo
    assert pg.evaluate(_BOX_JS)["value"] == TEXT
    pg.keyboard.press("Control+y")
    assert pg.evaluate(_BOX_JS)["value"] == want

    # a key typed after the paste is undone first (the browser's own stack), then the paste
    pg.keyboard.type("x")
    assert pg.evaluate(_BOX_JS)["value"] == want[:end] + "x" + want[end:]
    pg.keyboard.press("Control+z")
    assert pg.evaluate(_BOX_JS)["value"] == want
    pg.keyboard.press("Control+z")
    assert pg.evaluate(_BOX_JS)["value"] == TEXT
    wait_traced(pg, TEXT)
    assert pg.evaluate("gatescope.state.text") == TEXT
    assert_clean(pg, server)
