"""bench/load.py --quick against a real server: every part runs, and under the plain load (50 live sessions,
20 trace clients) no edit is lost and nothing fails. The bench itself asserts no speed; this checks what it
counts: a lost edit (a session's last edit never answered, or a reply whose content is not that edit's) or an
error reply would show here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The bench takes ~30 s on this 2-core machine; past this it is stopped (it kills its servers on SIGTERM).
LIMIT = 150


def test_the_quick_load_bench_loses_no_edit_and_counts_no_error(tmp_path):
    out = tmp_path / "summary.json"
    cmd = [sys.executable, str(ROOT / "bench" / "load.py"), "--quick", "--workers", "1", "--json", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed, _ = proc.communicate(timeout=LIMIT)
    finally:
        if proc.poll() is None:
            proc.terminate()  # the bench's SIGTERM handler stops its servers and clients
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, printed[-3000:]
    summary = json.loads(out.read_text())
    (run,) = summary["runs"]
    live, trace = run["live"], run["trace"]
    assert live["count"] > 0 and live["replies"] > 0 and trace["count"] > 0, printed[-3000:]
    assert live["lost"] == 0, f"{live['lost']} edits lost: {live['wrong_example'] or live}"
    assert live["errors"] == 0 and trace["errors"] == 0, live["error_examples"] + trace["error_examples"]
    assert run["sessions"] == 50 and run["trace_clients"] == 20
    assert len(summary["sweep"]) == 1 and len(summary["attacks"]) == 9
    assert all(a["bystander"]["count"] > 0 for a in summary["attacks"]), summary["attacks"]
