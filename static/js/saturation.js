/**
 * Saturation (Karpathy, Johnson & Fei-Fei 2015, fig. 3): for each gate of the layer, every unit as a point, x the
 * fraction of steps it is left-saturated (below 0.1 for a sigmoid gate, −0.9 for a tanh-valued one), y the fraction
 * right-saturated (above 0.9); all points lie in the triangle x + y ≤ 1. Over this text, or over the model's corpus
 * index (which records h and C: h, then). The server counts (POST /api/models/{id}/saturation); this view draws.
 * Hover names the unit, a click selects it, the selected unit is ringed in every chart.
 *
 * Change costs: "unit" restyles one marker a chart; "trace", "layer" and "model" ask again once the text has been
 * still for SETTLE_MS and its steps are shown (so the page's first trace and plotly.js, loaded after it by
 * plotting.js, never wait for this view); the source asks at once. The answer's charts are drawn one a task, in
 * idle callbacks (a plotly draw is ~15 ms: all of them in one task was a long task of ~80 ms).
 */

import { saturation } from "./api.js";
import { MATH, SHORT, el, fmt } from "./format.js";
import { whenIdle } from "./lazy.js";
import { AXIS_COLOUR, CONFIG, FONT, axis, chartColours, onColourScheme, plotlyReady } from "./plotting.js";

/** How long the text must be still before the fractions are asked for again (ms). */
const SETTLE_MS = 400;
/** Longest a chart waits for an idle moment after the one before it was drawn (ms). */
const CHART_WAIT_MS = 100;
export class SaturationView {
  /** nodes: {root (the panel), plots, source (select), note}. */
  constructor(nodes, state) {
    this.nodes = nodes;
    this.state = state;
    this.data = null; // the server's answer shown
    this.charts = new Map(); // gate -> div
    this._timer = 0;
    this._asking = null;
    this._drawing = 0; // bumped by each draw: a chart still to come of an older one is dropped
    nodes.source.append(new Option("this text", "text"), new Option("the corpus index", "index"));
    nodes.source.addEventListener("change", () => this._ask());
    state.subscribe((changed) => this._onChange(changed));
    onColourScheme(() => this.data && window.Plotly && this._draw()); // points, ring, corners: chartColours()
    this._width = 0;
    new ResizeObserver(() => {
      const w = nodes.plots.clientWidth;
      if (!w || w === this._width) return;
      this._width = w;
      if (this.data && window.Plotly) requestAnimationFrame(() => this._draw()); // the charts fit their new cells
    }).observe(nodes.plots);
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model")) {
      const text = s.card?.input !== "vectors";
      this.nodes.root.hidden = !text;
      this._asking?.abort(); // an answer about the last model is no use (and that model may be going away)
      this._clear();
    }
    const index = this.nodes.source.value === "index";
    if (changed.has("model") || changed.has("layer") || (changed.has("trace") && !index)) {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => s.T && this._ask(), SETTLE_MS); // after the steps are shown
    }
    if (changed.has("unit")) this._highlight();
  }

  _clear() {
    if (window.Plotly) for (const div of this.charts.values()) window.Plotly.purge(div);
    this.charts.clear();
    this.nodes.plots.replaceChildren();
    this.data = null;
  }

  async _ask() {
    const s = this.state;
    clearTimeout(this._timer);
    if (!s.card || s.card.input === "vectors") return;
    const fromIndex = this.nodes.source.value === "index";
    if (!fromIndex && !s.tracedText) {
      this._clear();
      this.nodes.note.textContent = "Type a text to count its saturated steps.";
      return;
    }
    this._asking?.abort();
    const ctl = new AbortController();
    this._asking = ctl;
    const key = `${s.model}|${s.layer}`;
    try {
      const source = fromIndex ? { index: true } : { text: s.tracedText };
      const [out] = await Promise.all([saturation(s.model, source, s.layer, ctl.signal), plotlyReady()]);
      if (ctl.signal.aborted || `${s.model}|${s.layer}` !== key) return;
      this.data = out;
      this._draw();
      const where = out.source === "index" ? `the corpus index (${out.steps.toLocaleString("en")} steps; it records h and C)` : `this text (${out.steps} steps)`;
      this.nodes.note.textContent = `Layer ${out.layer} over ${where}. C is unbounded: it has no saturation.`;
    } catch (e) {
      if (e.name === "AbortError") return;
      this._clear();
      this.nodes.note.textContent = fromIndex ? `${e.message}. Choose "this text" meanwhile.` : `Saturation not counted: ${e.message}`;
    }
  }

  _draw() {
    const out = this.data;
    const gates = Object.keys(out.gates);
    // one chart a gate, kept while the gates stay the same
    if ([...this.charts.keys()].join() !== gates.join()) {
      this._clear();
      this.data = out;
      for (const g of gates) {
        const div = el("div", { class: "sat-plot", "data-testid": `saturation-${g}`, "data-gate": g });
        this.nodes.plots.append(div);
        this.charts.set(g, div);
      }
    }
    // one chart a task (each is a plotly draw of ~15 ms): five in one task held a long paste's page ~80 ms
    const token = ++this._drawing;
    const next = (k) => {
      if (token !== this._drawing || !this.data) return; // newer fractions (or none) since
      this._plot(gates[k], this.charts.get(gates[k]));
      if (k + 1 < gates.length) whenIdle(() => next(k + 1), CHART_WAIT_MS);
    };
    next(0);
  }

  _figure(g) {
    const { left, right } = this.data.gates[g];
    const [lo, hi] = this.data.bounds[g];
    const units = left.map((_, u) => u);
    const u = this.state.unit;
    const size = Math.max(150, Math.min(230, this.charts.get(g).clientWidth || 200)); // the chart's grid cell
    const data = [
      {
        // the triangle x + y <= 1 every unit lies in
        type: "scatter", mode: "lines", x: [0, 1, 0, 0], y: [0, 0, 1, 0], fill: "toself",
        fillcolor: chartColours().band, line: { color: AXIS_COLOUR, width: 1 }, hoverinfo: "skip",
      },
      {
        type: "scatter", mode: "markers", x: left, y: right, customdata: units,
        marker: { size: 6, color: chartColours().point, line: { width: 0 } },
        hovertemplate: `unit %{customdata}<br>${SHORT[g]} < ${fmt(lo, 1)}: %{x:.1%} of steps<br>${SHORT[g]} > ${fmt(hi, 1)}: %{y:.1%}<extra></extra>`,
      },
      {
        type: "scatter", mode: "markers", x: [left[u] ?? null], y: [right[u] ?? null], customdata: [u],
        marker: { size: 12, color: "rgba(0,0,0,0)", line: { width: 2, color: chartColours().selected } },
        hovertemplate: `unit %{customdata} (selected)<extra></extra>`,
      },
    ];
    const layout = {
      width: size, height: size, margin: { l: 52, r: 8, t: 26, b: 36 }, font: FONT, showlegend: false,
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", hovermode: "closest",
      title: { text: MATH[g] || g, x: 0, xref: "paper", y: 1, yref: "container", yanchor: "top", pad: { t: 6 }, font: { size: 13 } },
      xaxis: axis({ range: [-0.03, 1.03], title: { text: "left-saturated", standoff: 2, font: { size: 11 } }, tickformat: ".0%", nticks: 3 }),
      yaxis: axis({ range: [-0.03, 1.03], title: { text: "right-saturated", standoff: 6, font: { size: 11 } }, tickformat: ".0%", nticks: 3 }),
    };
    return { data, layout };
  }

  _plot(g, div) {
    const fig = this._figure(g);
    window.Plotly.react(div, fig.data, fig.layout, CONFIG);
    div.dataset.selected = String(this.state.unit);
    if (!div._wired) {
      div._wired = true;
      div.on("plotly_click", (ev) => {
        const pt = ev.points.find((p) => p.customdata !== undefined);
        if (pt) this.state.select({ unit: pt.customdata });
      });
    }
  }

  _highlight() {
    if (!this.data || !window.Plotly) return;
    const u = this.state.unit;
    for (const [g, div] of this.charts) {
      if (!div._fullData) continue; // not drawn yet: it is drawn with the unit selected then
      const { left, right } = this.data.gates[g];
      window.Plotly.restyle(div, { x: [[left[u] ?? null]], y: [[right[u] ?? null]], customdata: [[u]] }, [2]);
      div.dataset.selected = String(u);
    }
  }
}
