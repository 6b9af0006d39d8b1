"""What a scrub step costs with a run set beside the page's (compare: a second diagram and b's heatmaps, side.js)
against the page alone, in a real Chromium against a real server, medians of interleaved rounds.

    python bench/compare.py [--steps 60] [--rounds 5]

Two pairs: ``code`` on 1,000 characters of model/network.py beside ``code`` on the next 1,000 (one model on two
texts: every view of b follows a's t), and ``recall-lstm`` beside ``recall-rnn`` on a recall text. For each, one page
alone and one with the comparison, taking turns in rounds of --steps scrub steps (→ dispatched on the page, as
bench/browser.py does): the keydown's handlers (every view of a, and b's through side.js, update synchronously) and
keydown to the end of the next frame. Prints each median and the ratio compare / alone (the cost of b's views), and
the load average, since the machine is shared.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import chromium, p95, start_server  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS  # noqa: E402

#: One scrub step: [the keydown's handlers, keydown to the end of the next frame] in ms.
STEP = """() => new Promise((done) => {
  const t0 = performance.now();
  document.body.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true}));
  const t1 = performance.now();
  requestAnimationFrame(() => setTimeout(() => done([t1 - t0, performance.now() - t0]), 0));
})"""

RECALL = "c1415926535897932384626433832795028841971693993751058209?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60, help="scrub steps a round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds, alone and compared taking turns")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = chromium("compare.py")
    source = (ROOT / "model" / "network.py").read_text()
    a_text, b_text = source[:1000], source[1000:2000]
    pairs = [
        ("code, 1,000 chars, beside itself on another text", "code", a_text, f"&vs_text={quote(b_text)}", len(a_text)),
        ("recall-lstm beside recall-rnn", "recall-lstm", RECALL, "&vs=recall-rnn", len(RECALL)),
    ]
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(tmp)
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
                for label, model, text, vs, T in pairs:
                    pages = {}
                    for side, extra in (("alone", ""), ("compare", vs)):
                        pg = browser.new_page(viewport={"width": 1280, "height": 900})
                        pg.goto(f"{url}/#model={model}&text={quote(text)}{extra}")
                        pg.wait_for_function(f"() => window.gatescope?.state.trace.T === {T}", timeout=60_000)
                        pg.wait_for_function("() => typeof Plotly !== 'undefined'", timeout=30_000)
                        if extra:
                            pg.wait_for_function("() => gatescope.side.b.T > 0 && gatescope.side.shown", timeout=60_000)
                        pg.wait_for_timeout(1000)
                        pg.locator("body").click(position={"x": 5, "y": 5})  # no text box focused
                        pages[side] = pg
                    got: dict[str, tuple[list[float], list[float]]] = {"alone": ([], []), "compare": ([], [])}
                    for _ in range(args.rounds):
                        for side, pg in pages.items():
                            pg.bring_to_front()
                            pg.evaluate(f"() => gatescope.state.setT({T // 4})")
                            pg.wait_for_timeout(200)
                            for _ in range(args.steps):
                                h, f = pg.evaluate(STEP)
                                got[side][0].append(h)
                                got[side][1].append(f)
                    moved = pages["compare"].evaluate("[gatescope.state.t, gatescope.side.b.t]")
                    for pg in pages.values():
                        pg.close()
                    print(label)
                    for k, what in enumerate(("keydown handlers", "keydown to the next frame")):
                        a, c = got["alone"][k], got["compare"][k]
                        ma, mc = statistics.median(a), statistics.median(c)
                        print(
                            f"  {what:<26} alone median {ma:6.2f} ms (p95 {p95(a):6.2f}); with b beside "
                            f"{mc:6.2f} ms (p95 {p95(c):6.2f}): {mc / ma:.2f}x"
                        )
                    print(f"  (after the last round a's t and b's t: {moved})")
                browser.close()
        finally:
            proc.terminate()
            proc.wait()
    print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
