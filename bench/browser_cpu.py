"""CPU time the page spends on a scrub step and on a 20,000-character paste, from Chromium's own counters.

    python bench/browser_cpu.py [--against DIR] [--steps 120] [--pastes 4] [--rounds 3]   (make bench BASELINE=DIR)

On a machine whose cores are shared, wall time (bench/browser.py) moves with the load; the renderer's
main-thread CPU time does not, much. Measured through the Chrome DevTools Protocol:
1. One scrub step (→ with the text box not focused, ``code`` at 1,000 characters), over --steps steps:
   Performance.getMetrics' TaskDuration (all main-thread work), ScriptDuration, RecalcStyleDuration and
   LayoutDuration, per step; and from a trace (Tracing, ``devtools.timeline``), the main thread's paint work
   (PrePaint, Paint, Layerize, UpdateLayer, Commit) per step.
2. A 20,000-character paste over the whole text, both ways the text can arrive: a paste event (what Ctrl+V
   sends; the page may insert the text itself) and an insertText edit (an IME, or playwright's insert_text,
   which no paste handler sees). From a trace, from the edit until the trace is drawn and the page is quiet
   (1.5 s): the longest main-thread task in thread CPU time (``tdur``) and in wall time (``dur``), and the
   CPU time of all of them.
With --against DIR a second server runs DIR's checkout (its app/, static/, templates/) and every figure
is measured on both in turns, in the same run (--rounds times each); medians and the ratio are printed.
The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import PASTED, chromium, open_code_page, start_server, texts  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS  # noqa: E402

#: Trace categories: the main thread's tasks (with their thread CPU time) and what they did.
CATEGORIES = ["toplevel", "devtools.timeline", "disabled-by-default-devtools.timeline", "blink", "cc"]
#: Main-thread trace events that are paint work.
PAINT = {"PrePaint", "Paint", "Layerize", "UpdateLayer", "Commit", "PaintImage", "UpdateLayerTree"}
#: Top-level task events, one per main-thread task.
TASKS = {"ThreadControllerImpl::RunTask", "RunTask"}
#: A paste as Ctrl+V delivers it: a paste event carrying the text (the browser inserts it unless a handler does).
PASTE = """(s) => { const b = document.querySelector('[data-testid=input]'); b.focus(); b.select();
  const dt = new DataTransfer(); dt.setData('text/plain', s);
  if (b.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }))) {
    document.execCommand('insertText', false, s); } }"""
STEP = """() => new Promise((done) => { const t0 = performance.now();
  document.body.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true }));
  requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0)); })"""


def trace_events(buf: bytes) -> tuple[list[dict], set[tuple[int, int]]]:
    """A trace's events, and the (pid, tid) of its renderer main threads."""
    events = json.loads(buf)
    events = events["traceEvents"] if isinstance(events, dict) else events
    mains = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e["args"].get("name") == "CrRendererMain"
    }
    return events, mains


def main_thread_events(buf: bytes) -> list[dict]:
    """The complete ('X') events of the renderer main threads in a trace."""
    events, mains = trace_events(buf)
    return [e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in mains]


#: Performance.getMetrics' counters (seconds of main-thread time) shown per scrub step.
METRICS = {
    "task": "TaskDuration",
    "script": "ScriptDuration",
    "style": "RecalcStyleDuration",
    "layout": "LayoutDuration",
}


def metrics(cdp) -> dict[str, float]:
    return {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}


def scrub(browser, page, cdp, steps: int) -> dict[str, float]:
    """Per scrub step, ms: main-thread CPU (task, script, style, layout; paint from a trace) and keydown to frame."""
    page.evaluate("() => gatescope.state.setT(0)")
    page.wait_for_timeout(300)
    before = metrics(cdp)
    browser.start_tracing(page=page, categories=CATEGORIES)
    frames = [page.evaluate(STEP) for _ in range(steps)]
    buf = browser.stop_tracing()
    after = metrics(cdp)
    per = {k: 1000 * (after[m] - before[m]) / steps for k, m in METRICS.items()}
    paint = sum(e.get("tdur", e.get("dur", 0)) for e in main_thread_events(buf) if e["name"] in PAINT)
    per["paint"] = paint / 1000 / steps
    per["frame"] = statistics.median(frames)
    return per


def paste(browser, page, text: str, how: str) -> dict[str, float]:
    """Longest main-thread task (CPU and wall, ms) and all tasks' CPU, from a paste until drawn and quiet."""
    page.evaluate("() => { const b = document.querySelector('[data-testid=input]'); b.focus(); b.select(); }")
    browser.start_tracing(page=page, categories=CATEGORIES)
    if how == "paste event":
        page.evaluate(PASTE, text)
    else:  # another first character: the whole text is traced again, as after the paste event
        text = "#" + text[1:]
        page.keyboard.insert_text(text)
    page.wait_for_function(PASTED, arg=text, timeout=60000)
    page.wait_for_timeout(1500)
    tasks = [e for e in main_thread_events(browser.stop_tracing()) if e["name"] in TASKS]
    cpu = [e.get("tdur", e["dur"]) / 1000 for e in tasks]
    wall = [e["dur"] / 1000 for e in tasks]
    return {"cpu max": max(cpu), "wall max": max(wall), "cpu all": sum(cpu)}


def open_page(browser, url: str, text: str):
    page = open_code_page(browser, url, text)
    page.wait_for_timeout(1000)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable", {"timeDomain": "threadTicks"})
    return page, cdp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--against", type=Path, help="a baseline checkout (e.g. /work/main) measured in turns")
    ap.add_argument("--steps", type=int, default=120, help="scrub steps a measurement")
    ap.add_argument("--pastes", type=int, default=4, help="pastes a round, each way (two texts in turn)")
    ap.add_argument("--rounds", type=int, default=3, help="turns a side")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = chromium("browser_cpu.py")
    text, long_texts = texts()
    sides = {"this": ROOT} | ({"baseline": args.against.resolve()} if args.against else {})
    load0 = os.getloadavg()
    results: dict[str, dict[str, list[float]]] = {name: {} for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {name: start_server(tmp, root) for name, root in sides.items()}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
                for _ in range(args.rounds):
                    for name, (_, url) in servers.items():
                        page, cdp = open_page(browser, url, text)
                        page.locator("body").click(position={"x": 5, "y": 5})
                        got = {f"scrub {k}": v for k, v in scrub(browser, page, cdp, args.steps).items()}
                        for k in range(args.pastes):
                            for how in ("paste event", "insertText"):
                                for m, v in paste(browser, page, long_texts[k % 2], how).items():
                                    got.setdefault(f"{how}: {m}", []).append(v)  # type: ignore[union-attr]
                        for m, v in got.items():
                            results[name].setdefault(m, []).extend(v if isinstance(v, list) else [v])
                        page.close()
                browser.close()
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait()
    load1 = os.getloadavg()
    print(f"code: scrub steps at 1,000 characters (--steps {args.steps}), 20,000-character pastes; Chromium {exe}")
    print("load average before {:.2f} {:.2f} {:.2f}; after {:.2f} {:.2f} {:.2f}".format(*load0, *load1))
    names = list(sides)
    print(f"  {'median, ms':<34}" + "".join(f"{n:>12}" for n in names) + ("       ratio" if len(names) == 2 else ""))
    for m in results["this"]:
        meds = [statistics.median(results[n][m]) for n in names]
        ratio = f"{meds[0] / meds[1]:12.2f}" if len(names) == 2 and meds[1] else ""
        unit = "  (per step)" if m.startswith("scrub") else ""
        print(f"  {m:<34}" + "".join(f"{v:12.1f}" for v in meds) + ratio + unit)
    print("  scrub task/script/style/layout: Performance.getMetrics (thread CPU); paint: trace events' thread time")
    print("  scrub frame: keydown to the next frame, wall time (includes waiting for the frame)")


if __name__ == "__main__":
    main()
