"""A real server on a free localhost port and a real headless Chromium (Debian's, driven by Playwright), plus what
the browser tests share: the API's trace as a reference, what the page shows (diagram numbers, drawn heatmap columns),
and the check that a page logged no error and asked no other host. The main server's models folder holds one model
of the tests' own: a tiny text LSTM whose vocabulary has an unknown entry (UNK_MODEL)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
#: Flags for Chromium on a machine with a closed network (no background calls home).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerURL(str):
    """The server's base URL, which also knows the server's process id."""

    pid: int


@contextmanager
def _running_server(tmp: Path, port: int | None = None, **env_extra: str) -> Iterator[ServerURL]:
    """The app under uvicorn in its own process (uploads kept in tmp/models), with extra GATESCOPE_* settings, on
    `port` (default: a free one)."""
    port = port or _free_port()
    env = {
        **os.environ,
        "GATESCOPE_MODELS": str(tmp / "models"),
        "GATESCOPE_DATA_DIR": str(tmp / "data"),  # its indexes
        "GATESCOPE_HELDOUT_CHARS": "20000",  # the code model's held-out index, small: a few seconds
        "GATESCOPE_DASK_SCHEDULER": "sync",  # built in the server's process: no cluster beside every test server
        "GATESCOPE_INDEX_BUNDLED": "1",  # as a user's server: a bundled model's held-out index on first ask
        "GATESCOPE_WARM_ATTRIBUTION": "1",  # and its attribution kernels compiled beside it on a first trace
        "GATESCOPE_HOST": "127.0.0.1",
        **env_extra,
    }
    log = open(tmp / "server.log", "wb")  # a file, not a pipe: a full pipe would stall the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
        + ["--ws-per-message-deflate", "false"],  # as `gatescope serve` runs it
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = ServerURL(f"http://127.0.0.1:{port}")
    url.pid = proc.pid
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(url + "/", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the server did not start:\n{(tmp / 'server.log').read_text()}") from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)  # a graceful shutdown closes the sockets and any index build first
        except subprocess.TimeoutExpired:  # a loaded machine: the test's verdict stands, the server goes
            proc.kill()
            proc.wait(timeout=10)
        log.close()


#: A model of the tests' own in the main server's models folder: it reads UNK_VOCAB, and any other character as
#: its unknown entry "<unk>" (the bundled models but one refuse such text).
UNK_MODEL = "unk-e2e"
UNK_VOCAB = ["<unk>", "a", "b", "c", " "]


def _write_unk_model(models: Path) -> None:
    """A tiny random char-level LSTM (H = 8, one-hot input, a next-token head) reading UNK_VOCAB, saved in gatescope's
    own format where the server finds uploaded models."""
    import model

    V = len(UNK_VOCAB)
    spec = model.Spec("lstm", V, 8, vocab=UNK_VOCAB, tokenizer="char", output_size=V)
    rng = np.random.default_rng(0)
    params = {n: (0.5 * rng.standard_normal(spec.expected_shape(n))).astype(np.float32) for n in spec.param_names()}
    folder = models / UNK_MODEL
    folder.mkdir(parents=True)
    model.save(model.Network(spec, params), folder / "model.safetensors")


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[str]:
    """The app under uvicorn in its own process (uploads kept in a fresh folder, which starts with UNK_MODEL); yields
    its base URL."""
    tmp = tmp_path_factory.mktemp("server")
    _write_unk_model(tmp / "models")
    with _running_server(tmp) as url:
        yield url


#: The token limit of `small_server`.
SMALL_MAX_TOKENS = 50


@pytest.fixture(scope="session")
def small_server(tmp_path_factory) -> Iterator[str]:
    """A second server that traces at most SMALL_MAX_TOKENS tokens (GATESCOPE_MAX_TOKENS)."""
    with _running_server(tmp_path_factory.mktemp("small"), GATESCOPE_MAX_TOKENS=str(SMALL_MAX_TOKENS)) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium through Playwright's executable_path."""
    from playwright.sync_api import sync_playwright

    exe = os.environ.get("GATESCOPE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("no chromium on PATH: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _recorded(pg):
    """A page that records its console errors (page_errors: the uncaught exceptions among them) and every request's
    URL."""
    pg.console_errors = []
    pg.page_errors = []
    pg.requested = []
    pg.refused = []  # "404 GET url" for every answer over 399: the console's own line names no URL
    pg.on("response", lambda r: r.status >= 400 and pg.refused.append(f"{r.status} {r.request.method} {r.url}"))
    pg.on("console", lambda m: m.type == "error" and pg.console_errors.append(m.text))
    pg.on("pageerror", lambda e: (pg.console_errors.append(str(e)), pg.page_errors.append(str(e))))
    pg.on("request", lambda r: pg.requested.append(r.url))
    return pg


@pytest.fixture
def page(browser, server):
    """A fresh page that records console errors and every request's host."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1280, "height": 720})
    pg = _recorded(ctx.new_page())
    yield pg
    ctx.close()


@pytest.fixture
def new_page(browser):
    """Opens more recorded pages, each in its own context (no shared storage): new_page(width, height)."""
    contexts = []

    def make(width: int = 1280, height: int = 720):
        ctx = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(ctx)
        return _recorded(ctx.new_page())

    yield make
    for ctx in contexts:
        ctx.close()


# ---------------------------------------------------------------------------------------------------------------------
# What every test checks at its end


def assert_clean(pg, server: str) -> None:
    """No console error, and no request to any host but the server."""
    assert pg.console_errors == [], f"console errors: {pg.console_errors}; refused requests: {pg.refused}"
    hosts = {urlparse(u).netloc for u in pg.requested if not u.startswith(("data:", "blob:"))}
    assert hosts == {urlparse(server).netloc}, f"requests went to {hosts}"


# ---------------------------------------------------------------------------------------------------------------------
# The API as the reference


def api_trace(server: str, model_id: str, text: str) -> dict:
    """POST {server}/api/trace {"model", "text"}: the plain JSON trace."""
    req = urllib.request.Request(
        server + "/api/trace",
        data=json.dumps({"model": model_id, "text": text}).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:  # say why: a bare "HTTP Error 422" hides which text was refused
        raise AssertionError(f"POST /api/trace {model_id} {text[:40]!r}: {e.code} {e.read().decode()[:300]}") from e


def save_page(pg, folder: Path) -> Path:
    """Click "Save as page" and keep the download in ``folder`` under the name the page gave it."""
    with pg.expect_download() as dl:
        pg.get_by_test_id("save-page").click()
    saved = Path(folder) / dl.value.suggested_filename
    dl.value.save_as(saved)
    return saved


def api_upload(server: str, weights: Path, vocab: Path | None = None, name: str | None = None) -> tuple[int, dict]:
    """POST {server}/api/models (multipart: file, vocab, name): the status and the JSON body, a refusal's too."""
    boundary = uuid.uuid4().hex
    fields = [("file", weights.read_bytes(), weights.name)]
    if vocab is not None:
        fields.append(("vocab", vocab.read_bytes(), vocab.name))
    if name is not None:
        fields.append(("name", name.encode(), None))
    parts = []
    for field, value, filename in fields:
        disposition = f'form-data; name="{field}"' + (f'; filename="{filename}"' if filename else "")
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    req = urllib.request.Request(
        server + "/api/models", data=body, headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def api_models(server: str) -> list[str]:
    """The ids GET {server}/api/models lists."""
    with urllib.request.urlopen(server + "/api/models", timeout=10) as r:
        return [c["id"] for c in json.load(r)]


def api_card(server: str, model_id: str) -> dict:
    """GET {server}/api/models/{id}."""
    with urllib.request.urlopen(f"{server}/api/models/{model_id}", timeout=10) as r:
        return json.load(r)


#: The numbers colah's diagram carries for the selected unit, per cell type.
DIAGRAM_KEYS = {
    "lstm": {"f", "i", "c_tilde", "c", "o", "h", "h_prev", "c_prev", "f_c_prev", "i_c_tilde", "tanh_c"},
    "gru": {"z", "r", "h_tilde", "h", "h_prev", "r_h_prev", "one_minus_z", "one_minus_z_h_prev", "z_h_tilde"},
    "rnn": {"h", "h_prev"},
}
DIAGRAM_KEYS["peephole"] = DIAGRAM_KEYS["coupled"] = DIAGRAM_KEYS["lstm"]
#: PyTorch's GRU gates U_h·h, not h, with r: the diagram has no r·h_{t−1} number.
DIAGRAM_KEYS["gru_reset_after"] = DIAGRAM_KEYS["gru"] - {"r_h_prev"}
#: An LSTM with proj_size: m = o·tanh(C) gets its own number (for a unit below P, h too).
DIAGRAM_KEYS["lstm_proj"] = DIAGRAM_KEYS["lstm"] | {"m"}


def reference(trace: dict, layer: int, t: int, unit: int) -> dict[str, float]:
    """Every line of the diagram at (layer, t, unit), from the API's gates (float64 NumPy, products recomputed)."""
    g = {k: np.asarray(v, dtype=np.float64)[:, unit] for k, v in trace["layers"][layer].items()}  # (T,) each
    out = {k: float(v[t]) for k, v in g.items()}
    h_prev = g["h"][t - 1] if t > 0 else 0.0
    out["h_prev"] = float(h_prev)
    if "c" in g:  # lstm, peephole, coupled
        c_prev = g["c"][t - 1] if t > 0 else 0.0
        out["c_prev"] = float(c_prev)
        out["f_c_prev"] = float(g["f"][t] * c_prev)
        out["i_c_tilde"] = float(g["i"][t] * g["c_tilde"][t])
        out["tanh_c"] = float(np.tanh(g["c"][t]))
    if "z" in g:  # gru
        out["r_h_prev"] = float(g["r"][t] * h_prev)
        out["one_minus_z"] = float(1.0 - g["z"][t])
        out["one_minus_z_h_prev"] = float((1.0 - g["z"][t]) * h_prev)
        out["z_h_tilde"] = float(g["z"][t] * g["h_tilde"][t])
    return out


# ---------------------------------------------------------------------------------------------------------------------
# What the page shows

#: The selection as the page marks it, the diagram's numbers and the step-by-step panel's numbers.
_SHOWN_JS = """() => {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const svg = q("diagram").querySelector("svg");
  const read = (root) => [...root.querySelectorAll("[data-gate][data-value]")]
    .filter((e) => e.dataset.value !== "" && e.getClientRects().length > 0)
    .map((e) => [e.dataset.gate, Number(e.dataset.value), e.textContent]);
  return {
    t: Number(q("timestep").dataset.t), unit: Number(q("unit").dataset.unit), layer: Number(q("layer").dataset.layer),
    cell: svg ? svg.dataset.cell : null, diagram: read(q("diagram")), steps: read(q("steps")),
  };
}"""


def shown(pg) -> dict:
    """What the page shows now: {t, unit, layer, cell, diagram: [(key, value, text)], steps: [...]}."""
    return pg.evaluate(_SHOWN_JS)


#: True when the diagram shows every number of its cell type (the selected unit's lines have arrived).
_DIAGRAM_READY_JS = """([keys, t, unit, layer]) => {
  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  if (t !== null && q("timestep").dataset.t !== String(t)) return false;
  if (unit !== null && q("unit").dataset.unit !== String(unit)) return false;
  if (layer !== null && q("layer").dataset.layer !== String(layer)) return false;
  const have = new Set([...q("diagram").querySelectorAll("[data-gate][data-value]")]
    .filter((e) => e.getClientRects().length > 0).map((e) => e.dataset.gate));
  return keys.every((k) => have.has(k));
}"""


def wait_diagram(pg, cell: str, t: int | None = None, unit: int | None = None, layer: int | None = None) -> dict:
    """Wait until the diagram shows every number of `cell` (at t, unit, layer when given); return shown(pg)."""
    pg.wait_for_function(_DIAGRAM_READY_JS, arg=[sorted(DIAGRAM_KEYS[cell]), t, unit, layer], timeout=15_000)
    return shown(pg)


def _number(text: str) -> tuple[float, float]:
    """A number as printed ("−0.52", "(−0.10)", "0.942") and half its last shown decimal (the rounding)."""
    s = text.strip().strip("()").replace("\u2212", "-").replace("\u2007", "")
    decimals = len(s.split(".")[1]) if "." in s else 0
    return float(s), 0.5 * 10.0**-decimals + 1e-9


def assert_numbers_match_api(view: dict, trace: dict, cell: str, tol: float = 1e-6) -> None:
    """The diagram and the step-by-step numbers equal the API's at the page's (layer, t, unit), and read so.

    Tolerance `tol`, relative past 1: the server computes the products (f·C_{t−1}, ...) in float32, whose spacing
    near |C| = 32 is 3.8e-6."""
    ref = reference(trace, view["layer"], view["t"], view["unit"])
    where = f"layer {view['layer']}, t = {view['t']}, unit {view['unit']}"
    keys = {k for k, _, _ in view["diagram"]}
    assert keys == DIAGRAM_KEYS[cell], f"the {cell} diagram shows {sorted(keys)} at {where}"
    gates = set(trace["layers"][view["layer"]])
    missing = gates - {k for k, _, _ in view["steps"]}
    assert not missing, f"the step-by-step panel shows no number for {sorted(missing)} at {where}"
    for panel in ("diagram", "steps"):
        for key, value, text in view[panel]:
            err = abs(value - ref[key])
            assert err <= tol * max(1.0, abs(ref[key])), f"{panel} {key} = {value}, the API gives {ref[key]} at {where}"
            printed, rounding = _number(text)
            assert abs(printed - value) <= rounding, f"{panel} {key} prints {text!r} for {value} at {where}"


#: Per heatmap (figure[data-gate]): the columns inside the plot area and those of them painted (any opaque pixel).
#: The raster is copied to a canvas of our own before reading, so the page's canvas is left as it is.
_DRAWN_JS = """() => [...document.querySelectorAll('[data-testid="heatmaps"] figure[data-gate]')].map((fig) => {
  const cv = fig.querySelector("canvas");
  const area = fig.querySelector(".hm-area").getBoundingClientRect();
  const box = cv.getBoundingClientRect();
  const out = { gate: fig.dataset.gate, visible: 0, painted: [], rows: cv.height };
  if (!cv.width || !box.width || getComputedStyle(cv).visibility === "hidden") return out;
  const colW = box.width / cv.width;
  const visible = Math.min(cv.width, Math.round(area.width / colW));
  out.visible = visible;
  if (visible < 1 || !cv.height) return out;  // the plot area is still being laid out (0 wide): nothing painted yet
  out.colW = colW;
  out.rowH = area.height / cv.height;
  const copy = document.createElement("canvas");
  copy.width = visible;
  copy.height = cv.height;
  const ctx = copy.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(cv, 0, 0, visible, cv.height, 0, 0, visible, cv.height);
  const d = ctx.getImageData(0, 0, visible, cv.height).data;
  for (let x = 0; x < visible; x++) {
    for (let y = 0; y < cv.height; y++) if (d[(y * visible + x) * 4 + 3] > 0) { out.painted.push(x); break; }
  }
  return out;
})"""


def drawn(pg) -> list[dict]:
    """Per heatmap: {gate, visible (columns in the plot area), painted: [column], rows, colW, rowH}."""
    return pg.evaluate(_DRAWN_JS)


def wait_drawn(pg, gates: list[str], T: int, timeout: float = 15_000) -> list[dict]:
    """Wait until the page holds T steps, has drawn them (lastDrawn), and every heatmap of `gates` shows T columns."""
    pg.wait_for_function(
        f"""([gates, T]) => {{
          const g = window.gatescope;
          if (!g || g.state.T !== T || g.lastDrawn().version !== g.state.trace.version) return false;
          const d = ({_DRAWN_JS})();
          return d.length === gates.length && d.every((p, k) => p.gate === gates[k] && p.painted.length >= T);
        }}""",
        arg=[gates, T],
        timeout=timeout,
        polling=100,
    )
    return drawn(pg)


def assert_drawn(panels: list[dict], gates: list[str], T: int) -> None:
    """Every heatmap of `gates` shows T painted columns, 0 to T−1, and nothing after them."""
    assert [p["gate"] for p in panels] == gates
    for p in panels:
        assert p["painted"] == list(range(T)), (
            f"heatmap {p['gate']} shows {len(p['painted'])} painted columns of {p['visible']} for T = {T}"
            f" (first past T: {[x for x in p['painted'] if x >= T][:3]})"
        )


def wait_frames(pg) -> None:
    """Wait until plotly has drawn every heatmap's frame (axes and title)."""
    pg.wait_for_function(
        """() => {
          const figs = [...document.querySelectorAll('[data-testid="heatmaps"] figure[data-gate]')];
          const framed = (f) => f.querySelector(".main-svg .xtick") && f.querySelector(".gtitle");
          return figs.length > 0 && figs.every(framed);
        }""",
        timeout=15_000,
    )


def _pixel_in(lo: float, hi: float) -> int:
    """The whole pixel nearest the middle of [lo, hi) (a mouse event lands on whole CSS pixels)."""
    x = round((lo + hi) / 2)
    assert lo <= x < hi, f"no whole pixel in [{lo}, {hi})"
    return x


def click_cell(pg, panel: dict, t: int, unit: int, hover: bool = False) -> None:
    """Click (or only hover) the cell (t, unit) of a heatmap: column t, row `unit` of its drawn raster."""
    hit = pg.get_by_test_id(f"heatmap-{panel['gate']}").locator(".hm-hit")
    hit.scroll_into_view_if_needed()
    box = hit.bounding_box()
    y = _pixel_in(box["y"] + unit * panel["rowH"], box["y"] + (unit + 1) * panel["rowH"])
    height = pg.viewport_size["height"]
    if not 0 <= y < height:  # a tall heatmap only partly in view: bring the cell's row in (a mouse event needs it)
        pg.evaluate("(dy) => window.scrollBy(0, dy)", y - height // 2)
        box = hit.bounding_box()
        y = _pixel_in(box["y"] + unit * panel["rowH"], box["y"] + (unit + 1) * panel["rowH"])
    x = _pixel_in(box["x"] + t * panel["colW"], box["x"] + (t + 1) * panel["colW"])
    pg.mouse.move(x, y)
    if not hover:
        pg.mouse.click(x, y)


def blur_text_box(pg) -> None:
    """Click a heading, so keys go to the page rather than the text box."""
    pg.get_by_role("heading", name="The cell at step t").click()
    assert pg.evaluate("document.activeElement === document.body")
