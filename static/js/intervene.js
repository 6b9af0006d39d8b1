/**
 * Change a unit and see what happens: hold the selected unit's C (or h, or any gate) at a value, scale it, zero it,
 * or patch in its value from another text, over steps [from, to); the server runs the model with it (POST
 * /api/trace with "interventions", model/interventions.py) and says what changed: the probability of the actual next
 * token before and after at every step, the log-likelihood difference, the top-k before and after, and how every
 * unit of the layer moved (after − before). This view draws those; it computes none of them.
 *
 * Change costs: "t" rewrites the step's table and moves the cursors; "interventions", "trace" (a new text read),
 * "layer" ask again once the text has been still for SETTLE_MS.
 */

import { traceIntervened } from "./api.js";
import { MATH, SHORT, el, fmt, showToken } from "./format.js";
import { CONFIG, FONT, axis, chartColours, onColourScheme, plotlyReady } from "./plotting.js";

/** How long the text must be still before the intervened run is asked for again (ms). */
const SETTLE_MS = 300;
/** What each operation is called in the form and in the list. */
const OPS = { set: "hold at", scale: "scale by", zero: "zero", patch: "patch from the text" };

/** An intervention in words: "hold unit 118's C at 0 from t = 12". */
export function describe(iv) {
  const who = `unit ${iv.unit}'s ${SHORT[iv.gate] || iv.gate}${iv.layer ? ` (layer ${iv.layer})` : ""}`;
  const how = {
    set: `hold ${who} at ${fmt(iv.value, 3)}`,
    scale: `scale ${who} by ${fmt(iv.value, 3)}`,
    zero: `zero ${who}`,
    patch: `patch ${who} from “${(iv.source_text || "").slice(0, 24)}${(iv.source_text || "").length > 24 ? "…" : ""}”`,
  }[iv.op];
  const to = iv.to === undefined || iv.to === null ? "" : ` to t = ${iv.to - 1}`;
  return `${how} from t = ${iv.from ?? 0}${to}`;
}

export class InterveneView {
  /** nodes: {root, form, op, gate, value, source, from, to, fromT, toT, add, clear, list, status, at, curve, change}. */
  constructor(nodes, state) {
    this.nodes = nodes;
    this.state = state;
    this.data = null;
    this._timer = 0;
    this._asking = null;
    for (const [value, text] of Object.entries(OPS)) nodes.op.append(new Option(text, value));
    nodes.op.addEventListener("change", () => this._fields());
    nodes.fromT.addEventListener("click", () => (nodes.from.value = String(state.t)));
    nodes.toT.addEventListener("click", () => (nodes.to.value = String(state.t)));
    nodes.form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      this._add();
    });
    nodes.clear.addEventListener("click", () => state.setInterventions([]));
    state.subscribe((changed) => this._onChange(changed));
    onColourScheme(() => this.data && window.Plotly && this._draw()); // held cells, the cursor, the bars: chartColours()
    for (const div of [nodes.curve, nodes.change]) {
      new ResizeObserver(() => this.data && window.Plotly && this._draw()).observe(div);
    }
    this._fields();
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model") || changed.has("card")) this._gates();
    if (changed.has("unit") || changed.has("model")) this.nodes.add.textContent = `Hold unit ${s.unit}`;
    if (changed.has("interventions")) this._list();
    if (["interventions", "trace", "layer"].some((k) => changed.has(k))) {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._ask(), SETTLE_MS);
    }
    if (changed.has("t") && this.data) {
      this._at();
      this._cursors();
    }
  }

  _gates() {
    const card = this.state.card;
    const sel = this.nodes.gate;
    sel.replaceChildren();
    if (!card) return;
    for (const g of card.gates) sel.append(new Option(`${SHORT[g] || g}`, g));
    sel.value = card.gates.includes("c") ? "c" : "h";
  }

  _fields() {
    const op = this.nodes.op.value;
    this.nodes.value.closest(".ctl").hidden = op === "zero" || op === "patch";
    this.nodes.source.closest(".ctl").hidden = op !== "patch";
  }

  _add() {
    const s = this.state;
    const { op, gate, value, source, from, to } = this.nodes;
    const iv = { layer: s.layer, unit: s.unit, gate: gate.value, op: op.value, from: Number(from.value || 0) };
    if (to.value !== "") iv.to = Number(to.value) + 1; // the form's last step, the server's exclusive end
    if (op.value === "set" || op.value === "scale") iv.value = Number(value.value || 0);
    if (op.value === "patch") iv.source_text = source.value;
    s.setInterventions([...s.interventions, iv]);
  }

  _list() {
    const list = this.nodes.list;
    list.replaceChildren();
    this.state.interventions.forEach((iv, k) => {
      const drop = el("button", { type: "button", class: "mini", text: "×", title: "Remove", "aria-label": `Remove: ${describe(iv)}` });
      drop.addEventListener("click", () => this.state.setInterventions(this.state.interventions.filter((_, j) => j !== k)));
      list.append(el("li", { "data-testid": "intervention" }, el("span", { text: describe(iv) }), drop));
    });
    this.nodes.clear.hidden = !this.state.interventions.length;
    if (!this.state.interventions.length) this._clear("Choose a unit (click a heatmap cell), then hold it: the model runs with the value you set.");
  }

  _clear(note) {
    this._asking?.abort();
    if (window.Plotly) for (const div of [this.nodes.curve, this.nodes.change]) window.Plotly.purge(div);
    this.data = null;
    this.nodes.at.replaceChildren();
    this.nodes.status.textContent = note;
    this.nodes.root.dataset.ready = "false";
  }

  async _ask() {
    const s = this.state;
    if (!s.interventions.length) return;
    if (!s.tracedText) return this._clear("Type a text first.");
    this._asking?.abort();
    const ctl = new AbortController();
    this._asking = ctl;
    this.nodes.status.textContent = "Running the model with the units held…";
    try {
      const [out] = await Promise.all([traceIntervened(s.model, s.tracedText, s.interventions, ctl.signal), plotlyReady()]);
      if (ctl.signal.aborted) return;
      this.data = out;
      this._draw();
      this._at();
      const what = out.intervened.map((iv) => describe({ ...iv, unit: iv.units.length === 1 ? iv.units[0] : iv.units.join(", ") })).join("; ");
      this.nodes.status.textContent = `The model ran with: ${what}.`;
      this.nodes.root.dataset.ready = "true";
    } catch (e) {
      if (e.name === "AbortError") return;
      this._clear(`Not run: ${e.message}`);
    }
  }

  /** Rectangles over the cells the interventions held, on a (step × unit) chart of layer `layer`. */
  _heldShapes(layer) {
    return this.data.intervened.filter((iv) => iv.layer === layer).flatMap((iv) => iv.units.map((u) => ({
      type: "rect", xref: "x", yref: "y", x0: iv.from - 0.5, x1: iv.to - 0.5, y0: u - 0.5, y1: u + 0.5,
      line: { color: chartColours().held, width: 2 }, fillcolor: "rgba(0,0,0,0)",
    })));
  }

  _cursor() {
    const t = this.state.t;
    return { type: "line", xref: "x", yref: "paper", x0: t, x1: t, y0: 0, y1: 1, line: { color: chartColours().cursor, width: 1 } };
  }

  _draw() {
    const d = this.data;
    if (!d || !window.Plotly) return;
    const e = d.effect;
    const T = d.tokens.length;
    const steps = [...Array(T).keys()];
    const spans = d.intervened.map((iv) => ({
      type: "rect", xref: "x", yref: "paper", x0: iv.from - 0.5, x1: iv.to - 0.5, y0: 0, y1: 1,
      fillcolor: chartColours().heldFill, line: { width: 0 },
    }));
    if (e.dloglik) {
      this.nodes.curve.hidden = false;
      const y = Array.from(e.dloglik.data, (v) => (Number.isFinite(v) ? v : null));
      const layout = {
        width: this.nodes.curve.clientWidth || 600, height: 170, margin: { l: 56, r: 12, t: 26, b: 30 }, font: FONT,
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", shapes: [...spans, this._cursor()],
        title: { text: "Δ log p of the token that came next", x: 0, xref: "paper", font: { size: 13 } },
        xaxis: axis({ range: [-0.5, T - 0.5], title: { text: "step t", standoff: 2, font: { size: 11 } } }),
        yaxis: axis({ title: { text: "Δ log p", standoff: 4, font: { size: 11 } }, zeroline: true }),
      };
      const data = [{ type: "bar", x: steps, y, marker: { color: y.map((v) => (v !== null && v < 0 ? chartColours().b : chartColours().a)) }, hovertemplate: "t = %{x}: Δ log p = %{y:.3f}<extra></extra>" }];
      window.Plotly.react(this.nodes.curve, data, layout, CONFIG);
      this._wire(this.nodes.curve, false);
    } else {
      window.Plotly.purge(this.nodes.curve);
      this.nodes.curve.hidden = true;
    }
    const layer = Math.min(this.state.layer, e.layers.length - 1);
    const gate = "h";
    const change = e.layers[layer][gate];
    const H = change.cols;
    const z = [];
    let big = 0;
    for (let u = 0; u < H; u++) {
      const row = new Array(T);
      for (let t = 0; t < T; t++) {
        const v = change.data[t * H + u];
        row[t] = v;
        big = Math.max(big, Math.abs(v));
      }
      z.push(row);
    }
    const layout = {
      width: this.nodes.change.clientWidth || 600, height: Math.max(150, Math.min(280, 2 * H + 80)),
      margin: { l: 56, r: 64, t: 26, b: 30 }, font: FONT, paper_bgcolor: "rgba(0,0,0,0)",
      shapes: [...this._heldShapes(layer), this._cursor()],
      title: { text: `${MATH[gate] || gate} after − before, every unit (held: outlined)`, x: 0, xref: "paper", font: { size: 13 } },
      xaxis: axis({ range: [-0.5, T - 0.5], title: { text: "step t", standoff: 2, font: { size: 11 } } }),
      yaxis: axis({ range: [H - 0.5, -0.5], title: { text: "unit", standoff: 4, font: { size: 11 } } }),
    };
    const data = [{
      type: "heatmap", z, zmin: -big || -1, zmax: big || 1, colorscale: "RdBu", reversescale: true,
      colorbar: { thickness: 10, len: 0.9, title: { text: "Δ", side: "top", font: { size: 11 } } },
      hovertemplate: "unit %{y}, t = %{x}: after − before = %{z:.4f}<extra></extra>",
    }];
    window.Plotly.react(this.nodes.change, data, layout, CONFIG);
    this.nodes.change.dataset.held = String(layout.shapes.length - 1);
    this._wire(this.nodes.change, true);
  }

  _cursors() {
    if (!window.Plotly || !this.data) return;
    for (const div of [this.nodes.curve, this.nodes.change]) {
      if (div.hidden || !div._fullLayout) continue;
      const shapes = (div.layout.shapes || []).slice(0, -1);
      window.Plotly.relayout(div, { shapes: [...shapes, this._cursor()] });
    }
  }

  _wire(div, units) {
    if (div._wired) return;
    div._wired = true;
    div.on("plotly_click", (ev) => {
      const pt = ev.points[0];
      if (!pt) return;
      const t = Math.round(Number(pt.x));
      if (units) this.state.select({ t, unit: Math.round(Number(pt.y)) });
      else this.state.setT(t);
    });
  }

  /** The step t before and after: the next token's probability, Δ log p, and the top-k both ways. */
  _at() {
    const d = this.data;
    const e = d.effect;
    const t = this.state.t;
    const box = this.nodes.at;
    box.replaceChildren();
    if (t >= d.tokens.length) return;
    const rows = [];
    const next = d.tokens[t + 1];
    if (e.p_before && next !== undefined) {
      const b = e.p_before.data[t];
      const a = e.p_after.data[t];
      const dl = e.dloglik.data[t];
      rows.push([`P(next = “${showToken(next)}”)`, `${fmt(b, 3)} → ${fmt(a, 3)}`, Number.isFinite(dl) ? `Δ log p = ${dl >= 0 ? "+" : ""}${fmt(dl, 3)}` : ""]);
    }
    const top = (x) => {
      if (!x) return "—";
      const k = x.k;
      return x.tokens[t].map((tok, j) => `${showToken(tok)} ${fmt(100 * x.p.data[t * k + j], 1)}%`).join(" · ");
    };
    if (e.top_before) rows.push(["likeliest before", top(e.top_before), ""], ["likeliest after", top(e.top_after), ""]);
    const table = el("table", { class: "iv-table", "data-testid": "intervene-table" });
    table.append(el("caption", { text: `t = ${t}, read ${showToken(d.tokens[t])}` }));
    for (const [k, v, w] of rows) table.append(el("tr", {}, el("th", { text: k }), el("td", { text: v }), el("td", { text: w })));
    box.append(table);
  }
}
