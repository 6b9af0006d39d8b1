"""What the long main-thread tasks of a 20,000-character paste on ``code`` run, from DevTools traces.

    python bench/paste_tasks.py [--pastes 10] [--over 50] [--how paste|insert]

Each paste (a paste event, as Ctrl+V sends it; two texts in turn, over the whole text) is traced (Tracing,
``devtools.timeline`` with V8's sampling profiler) from the paste until the trace is drawn and the page is quiet
(1.5 s). For every main-thread task longer than --over ms (wall or CPU) it prints the task's wall and CPU time
and what ran in it: the outermost timeline events inside the task (FunctionCall with its function and URL:line, a
timer, an animation frame, an idle callback, an event, style, layout, paint, GC), each with its thread CPU time, and
the JS functions the profiler's samples inside the task fell in most (self time). The last lines count the long
tasks by the script they ran most, and print the longest task's median and p95 over the pastes, wall and CPU.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.browser import PASTED, chromium, open_code_page, p95, start_server, texts  # noqa: E402
from bench.browser_cpu import PASTE, TASKS, trace_events  # noqa: E402
from tests.e2e.conftest import CHROMIUM_ARGS  # noqa: E402

CATEGORIES = [
    "toplevel",
    "devtools.timeline",
    "disabled-by-default-devtools.timeline",
    "v8",
    "disabled-by-default-v8.cpu_profiler",
    "blink",
    "cc",
]


#: Events that only hold others (a task, a message, a checkpoint): what runs is looked for inside them.
WRAPPERS = {
    "RunTask",
    "HandlePostMessage",
    "BlinkScheduler_PerformMicrotaskCheckpoint",
    "ProxyMain::BeginMainFrame",
    "ThreadProxy::BeginMainFrame",
    "LocalFrameView::RunPostLifecycleSteps",
    "PageAnimator::serviceScriptedAnimations",
    "ProxyMain::BeginMainFrame::commit",
    "WidgetBase::UpdateVisualState",
    "LocalFrameView::UpdateLifecyclePhases",
    "FrameWidget::UpdateLifecycle",
    "WebFrameWidgetImpl::UpdateLifecycle",
    "PageWidgetDelegate::UpdateLifecycle",
    "ScheduledAction::execute",
    "v8.run",
    "V8.Execute",
    "SimpleWatcher::OnHandleReady",
}


def label(e: dict) -> str:
    """A timeline event in words: its name, and for script what ran (function, file:line) or which event."""
    d = e.get("args", {}).get("data", {}) or {}
    name = e["name"]
    if name == "FunctionCall":
        fn = d.get("functionName") or "(anonymous)"
        return f"FunctionCall {fn} {Path(d.get('url', '')).name}:{d.get('lineNumber', '?')}"
    if name == "EventDispatch":
        return f"EventDispatch {d.get('type', '')}"
    if name in ("TimerFire", "FireAnimationFrame", "FireIdleCallback"):
        return name
    return name


def profile_samples(events: list[dict], threads: set) -> list[tuple[float, str]]:
    """The sampling profiler's samples of the given (pid, tid) threads as (ts in µs, the function on top)."""
    nodes: dict[tuple, dict] = {}
    out: list[tuple[float, str]] = []
    start: dict = {}
    for e in events:
        pid_id = (e.get("pid"), e.get("id"))
        if e.get("name") == "Profile" and (e.get("pid"), e.get("tid")) in threads:
            start[pid_id] = e["args"]["data"]["startTime"]
        if e.get("name") != "ProfileChunk" or pid_id not in start:
            continue
        data = e["args"]["data"]
        prof = data.get("cpuProfile", {})
        for n in prof.get("nodes", []):
            cf = n["callFrame"]
            fn = cf.get("functionName") or "(anonymous)"
            nodes[pid_id + (n["id"],)] = {"name": f"{fn} {Path(cf.get('url', '')).name}:{cf.get('lineNumber', -1) + 1}"}
        ts = start.get(pid_id, 0)
        for node, dt in zip(prof.get("samples", []), data.get("timeDeltas", []), strict=False):
            ts += dt
            n = nodes.get(pid_id + (node,))
            if n:
                out.append((ts, n["name"]))
        start[pid_id] = ts
    return out


def analyse(buf: bytes, over: float) -> tuple[float, float, list[dict]]:
    """The longest main-thread task (ms: wall, and thread CPU) and, for each task over `over` ms, what it ran."""
    events, mains = trace_events(buf)
    main = [e for e in events if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in mains]
    samples = sorted(profile_samples(events, mains))
    tasks, end = [], -1.0  # the outermost task events (a RunTask holds another)
    for e in sorted((e for e in main if e["name"] in TASKS), key=lambda e: (e["ts"], -e["dur"])):
        if e["ts"] >= end:
            tasks.append(e)
            end = e["ts"] + e["dur"]
    starts = [e["ts"] for e in main if e["name"] == "CpuProfiler::StartProfiling"]
    tasks = [t for t in tasks if not any(t["ts"] <= ts < t["ts"] + t["dur"] for ts in starts)]
    longest = max((t["dur"] / 1000 for t in tasks), default=0.0)
    longest_cpu = max((t.get("tdur", t["dur"]) / 1000 for t in tasks), default=0.0)
    found = []
    for task in sorted(tasks, key=lambda t: t["ts"]):
        if task["dur"] / 1000 <= over and task.get("tdur", 0) / 1000 <= over:
            continue
        t0, t1 = task["ts"], task["ts"] + task["dur"]
        inside = [e for e in main if e is not task and t0 <= e["ts"] < t1 and e["tid"] == task["tid"]]
        # the events directly under the task: not inside another event inside it
        inside.sort(key=lambda e: (e["ts"], -e.get("dur", 0)))
        top, end = [], -1.0
        for e in inside:
            if e["name"] in WRAPPERS or e["name"].startswith(("Receive mojo", "ThreadController")):
                continue
            if e["ts"] >= end:
                top.append(e)
                end = e["ts"] + e.get("dur", 0)
        parts = collections.Counter()  # CPU time (the thread's), where the trace has it
        for e in top:
            parts[label(e)] += e.get("tdur", e.get("dur", 0)) / 1000
        kinds = collections.Counter()  # style/layout/paint/GC anywhere in the task
        for e in inside:
            if e["name"] in ("UpdateLayoutTree", "Layout", "Paint", "PrePaint", "MajorGC", "MinorGC", "ParseHTML"):
                kinds[e["name"]] += e.get("tdur", e.get("dur", 0)) / 1000
        js = collections.Counter(name for ts, name in samples if t0 <= ts < t1)
        found.append(
            {
                "wall": task["dur"] / 1000,
                "cpu": task.get("tdur", task["dur"]) / 1000,
                "parts": parts.most_common(6),
                "kinds": kinds.most_common(),
                "js": js.most_common(8),
                "samples": sum(js.values()),
            }
        )
    return longest, longest_cpu, found


def what_ran(task: dict) -> str:
    """A long task's name for the tally: the page's script file its samples fell in most (plotly's counted as
    plotly.js), else its biggest timeline part."""
    files = collections.Counter()
    for name, n in task["js"]:
        where = name.rsplit(" ", 1)[-1].split(":")[0]
        if where.endswith(".js"):
            files[where] += n
    if files:
        return files.most_common(1)[0][0]
    return task["parts"][0][0] if task["parts"] else "(nothing traced)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pastes", type=int, default=10)
    ap.add_argument("--over", type=float, default=50.0, help="list tasks longer than this (ms, wall)")
    ap.add_argument("--how", choices=["paste", "insert"], default="paste")
    ap.add_argument("--save", type=Path, help="a folder to keep each paste's trace in (paste1.json ...)")
    ap.add_argument("--root", type=Path, default=ROOT, help="the checkout to serve")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    exe = chromium("paste_tasks.py")
    text, long_texts = texts()
    longest: list[float] = []
    longest_cpu: list[float] = []
    biggest = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_server(tmp, args.root.resolve())
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
                page = open_code_page(browser, url, text)
                page.wait_for_timeout(1500)
                for k in range(args.pastes):
                    s = long_texts[k % 2]
                    page.evaluate(
                        "() => { const b = document.querySelector('[data-testid=input]'); b.focus(); b.select(); }"
                    )
                    browser.start_tracing(page=page, categories=CATEGORIES)
                    page.evaluate("1")  # the profiler starts with the first script run: a long task of its own
                    page.wait_for_timeout(300)
                    if args.how == "paste":
                        page.evaluate(PASTE, s)
                    else:
                        page.keyboard.insert_text(s)
                    page.wait_for_function(PASTED, arg=s, timeout=60000)
                    page.wait_for_timeout(1500)
                    buf = browser.stop_tracing()
                    if args.save:
                        (args.save / f"paste{k + 1}.json").write_bytes(buf)
                    top, top_cpu, found = analyse(buf, args.over)
                    longest.append(top)
                    longest_cpu.append(top_cpu)
                    print(
                        f"paste {k + 1}: longest task {top:.1f} ms wall, {top_cpu:.1f} ms CPU; "
                        f"{len(found)} over {args.over:.0f} ms"
                    )
                    for f in found:
                        print(f"  task {f['wall']:.1f} ms wall, {f['cpu']:.1f} ms CPU (parts: CPU ms)")
                        for name, ms in f["parts"]:
                            print(f"      {ms:7.1f} ms  {name}")
                        if f["kinds"]:
                            print("      within: " + ", ".join(f"{n} {ms:.1f} ms" for n, ms in f["kinds"]))
                        if f["js"]:
                            print(f"      JS samples ({f['samples']}): " + "; ".join(f"{n} x{c}" for n, c in f["js"]))
                        biggest[what_ran(f)] += 1
                browser.close()
        finally:
            proc.terminate()
            proc.wait()
    print("long tasks by the script they ran most (else their biggest part):")
    for name, n in biggest.most_common():
        print(f"  {n:3d}  {name}")
    print(
        f"longest task per paste: median {statistics.median(longest):.1f} ms, p95 {p95(longest):.1f} ms, "
        f"max {max(longest):.1f} ms (n={len(longest)})"
    )
    print(
        f"longest task per paste, thread CPU: median {statistics.median(longest_cpu):.1f} ms, "
        f"p95 {p95(longest_cpu):.1f} ms, max {max(longest_cpu):.1f} ms (n={len(longest_cpu)})"
    )


if __name__ == "__main__":
    main()
