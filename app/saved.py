"""A saved page: one self-contained HTML file that shows a trace without a server (POST /api/page).

Its markup is the live page's: templates/saved.html and index.html build the views from the same macros
(templates/parts/views.html), the saved page leaving out only what needs the server.

The file runs the page's own view code: every ES module reachable from ``static/js/saved.js`` is inlined as a
``data:`` URL in an import map, its relative imports (``from "./x.js"``) rewritten to the map's names
(``"gatescope/x.js"``), so the module graph is the page's, each module once. The CSS files are inlined, and
plotly.js (from the installed plotly package) comes first as a classic script, so the views find ``Plotly``
ready. The trace travels as the live socket's binary reply (base64), with every unit's exact lines (what
``focus_json`` sends for one unit) as float32 columns; ``api.js`` reads them instead of the socket.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from model import Network, Trace

from .encoding import dumps_binary, focus_json, trace_compact

#: The saved page's entry module (in static/js).
ENTRY = "saved.js"
#: The stylesheets the saved page inlines, in the live page's order (static/css).
STYLES: tuple[str, ...] = ("main.css", "picker.css", "banner.css", "scrubber.css", "diagram.css", "steps.css")
STYLES += ("legend.css", "heatmaps.css", "overview.css", "inspector.css", "side.css", "present.css", "saved.css")
#: A relative import or re-export of a sibling module: `from "./x.js"`, `import "./x.js"`.
_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*)(["'])\./([A-Za-z0-9_-]+\.js)\2""")


def module_graph(js_dir: Path, entry: str = ENTRY) -> dict[str, str]:
    """Every module reachable from ``entry`` (file name -> its source, imports rewritten to "gatescope/<name>")."""
    out: dict[str, str] = {}
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        path = js_dir / name
        if not path.is_file():
            raise FileNotFoundError(f"static/js/{name} is imported but does not exist")
        source = path.read_text(encoding="utf-8")
        todo += [m.group(3) for m in _IMPORT.finditer(source)]
        out[name] = _IMPORT.sub(lambda m: f"{m.group(1)}{m.group(2)}gatescope/{m.group(3)}{m.group(2)}", source)
    return out


def import_map(modules: dict[str, str]) -> str:
    """The import map naming each module as a data: URL (``</`` escaped: it sits in a <script>)."""
    imports = {
        f"gatescope/{name}": "data:text/javascript;base64," + base64.b64encode(src.encode()).decode()
        for name, src in sorted(modules.items())
    }
    return json.dumps({"imports": imports}).replace("</", "<\\/")


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, "<f4").tobytes()).decode()


def unit_lines(tr: Trace) -> list[dict[str, Any]]:
    """Every unit's exact lines per layer: {name: {"units": n, "data": base64 float32 (T, n)}}, the units 0..n-1
    that have that line (a projected h has fewer)."""
    out = []
    for k, layer in enumerate(tr.layers):
        width = max(a.shape[1] for a in layer.values())  # the layer's units
        per = [tr.unit(k, u) for u in range(width)]  # each {name: (T,)}
        names = list(per[0])
        columns = {}
        for name in names:
            have = [p[name] for p in per if name in p]  # units 0..n-1 (u < P for a projected h)
            columns[name] = {"units": len(have), "data": _b64(np.stack(have, axis=1))}  # (T, n)
        out.append(columns)
    return out


def page_data(
    name: str, net: Network, tr: Trace, card: dict[str, Any], top_k: int, select: dict[str, Any]
) -> dict[str, Any]:
    """What the saved page embeds: the model's card, the text, the selection, the trace as the live socket's
    binary reply (from step 0) and every unit's lines."""
    layer, unit = select["layer"], select["unit"]
    body = trace_compact(name, net, tr, top_k)
    body |= {"seq": 1, "from": 0, "length": len(tr), "encoding": "binary", "focus": focus_json(tr, layer, unit, 0)}
    return {
        "card": card,
        "text": select["text"],
        "select": {
            "layer": layer,
            "unit": unit,
            "t": select["t"],
            **({"win": select["win"]} if "win" in select else {}),
        },
        "reply": base64.b64encode(dumps_binary(body)).decode(),
        "lines": unit_lines(tr),
    }


def page_html(template: Any, static: Path, plotly_js: Path, data: dict[str, Any], context: dict[str, Any]) -> str:
    """The saved page: ``template`` (templates/saved.html, a Jinja template) filled with the inlined styles, plotly.js,
    the import map of the view modules and the embedded data."""
    styles = "\n".join((static / "css" / s).read_text(encoding="utf-8") for s in STYLES)
    plotly_src = "data:text/javascript;base64," + base64.b64encode(plotly_js.read_bytes()).decode()
    return str(
        template.render(
            **context,
            styles=styles.replace("</", "<\\/"),
            plotly_src=plotly_src,
            import_map=import_map(module_graph(static / "js")),
            data=json.dumps(data).replace("</", "<\\/"),
        )
    )
