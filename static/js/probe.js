/**
 * "Which unit tracks…?": pick a feature (a built-in one from GET /api/models/{id}/features, a regular
 * expression, or labels from a JSON file), probe this text or the model's index (POST .../probe), and see the
 * server's ranking (top 10: click one to select it), the best unit's curve over the feature (plotly), the
 * linear probe's held-out scores in a line of text, and "Save as known unit" (POST .../known-units: the card's
 * Known units then list it).
 *
 * Everything shown comes from the server's answer: this view never correlates, fits or sorts anything itself.
 * It selects through state.select (and state.setGate / state.setOrder("probe", units) where the page has them).
 *
 * For tests: the root's data-state ("idle" | "running" | "done" | "failed"), each ranking row's data-layer,
 * data-unit, data-gate; the plot's data-steps (points drawn).
 */

import { ApiError, listFeatures, probeUnits, saveKnownUnit } from "./api.js";
import { SHORT, el, fmt, showToken } from "./format.js";
import { CONFIG, FONT, MONO, axis, chartColours, hasPlotly, onColourScheme, plotlyReady } from "./plotting.js";

/** Ranking rows listed (the server sends up to 50). */
const SHOWN = 10;
// the feature's line and the best unit's: chartColours().feature and .unit

export class ProbeView {
  /**
   * els: {root, feature (select), regex (input), labels (file input), regexBox, labelsBox, over (select: text | index),
   * linear (checkbox), run (button), status, ranking (ol), plot, linearText, save (button)}
   */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    this._result = null;
    this._labels = null;
    this._abort = null;
    this._features = [];
    els.feature.addEventListener("change", () => this._showKind());
    els.labels.addEventListener("change", () => this._readLabels());
    els.run.addEventListener("click", () => this.run());
    els.regex.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") this.run();
    });
    els.save.addEventListener("click", () => this._save());
    els.ranking.addEventListener("click", (ev) => {
      const row = ev.target.closest("[data-unit]");
      if (row) this._select(row.dataset);
    });
    state.subscribe((changed) => this._onChange(changed));
    onColourScheme(() => this._result && this._drawCurve());
    addEventListener("resize", () => {
      if (hasPlotly() && !els.plot.hidden && this._result) window.Plotly.Plots.resize(els.plot);
    });
    plotlyReady().then(() => this._drawCurve(), () => {});
    this._setState("idle");
  }

  _onChange(changed) {
    if (changed.has("model")) this._loadFeatures();
    if (changed.has("unit") || changed.has("layer")) this._markSelected();
  }

  async _loadFeatures() {
    const s = this.state;
    const model = s.model;
    this._abort?.abort();
    this._result = null;
    this._render();
    const text = s.card?.input === "text";
    this.els.root.hidden = !text;
    if (!text) return;
    try {
      const got = await listFeatures(model);
      if (model !== s.model) return;
      this._features = got.features;
      this._fill(got);
    } catch (e) {
      this._status(`The features did not load: ${e.message}`, "failed");
    }
  }

  _fill(got) {
    const { feature } = this.els;
    const builtin = got.features.map((f) => el("option", { value: `f:${f.name}`, text: f.name, title: f.description }));
    const python = got.python
      .filter((n) => !got.features.some((f) => f.name === n))
      .map((n) => el("option", { value: `f:${n}`, text: `${n} (Python)` }));
    feature.replaceChildren(
      el("optgroup", { label: "Built-in" }, ...builtin),
      ...(python.length ? [el("optgroup", { label: "Python, on request" }, ...python)] : []),
      el("optgroup", { label: "Your own" }, el("option", { value: "regex", text: "a regular expression…" }), el("option", { value: "labels", text: "labels from a JSON file…" })),
    );
    this._showKind();
  }

  _showKind() {
    const kind = this.els.feature.value;
    this.els.regexBox.hidden = kind !== "regex";
    this.els.labelsBox.hidden = kind !== "labels";
    const f = this._features.find((x) => `f:${x.name}` === kind);
    this.els.feature.title = f ? f.description : "";
  }

  async _readLabels() {
    const file = this.els.labels.files?.[0];
    this._labels = null;
    if (!file) return;
    try {
      const labels = JSON.parse(await file.text());
      if (!Array.isArray(labels)) throw new Error("it is not a JSON list");
      this._labels = labels;
      this._status(`${file.name}: ${labels.length} labels.`, "idle");
    } catch (e) {
      this._status(`${file.name} is not a JSON list of numbers (${e.message}).`, "failed");
    }
  }

  /** The request body for the panel's choices, or null (with a message) when something is missing. */
  _body() {
    const { feature, regex, over, linear } = this.els;
    const body = over.value === "index" ? { index: true } : { text: this.state.tracedText };
    if (linear.checked) body.linear = true;
    if (feature.value === "regex") {
      if (!regex.value) return this._status("Type a regular expression first.", "failed");
      body.regex = regex.value;
    } else if (feature.value === "labels") {
      if (!this._labels) return this._status("Choose a JSON file of labels (a number per token) first.", "failed");
      body.labels = this._labels;
    } else {
      body.feature = feature.value.slice(2);
    }
    return body;
  }

  /** Run the probe the panel describes. */
  async run() {
    const s = this.state;
    const body = this._body();
    if (!body) return;
    if (!body.index && !s.tracedText) return this._status("There is no text to probe: type some first.", "failed");
    this._abort?.abort();
    const abort = (this._abort = new AbortController());
    const model = s.model;
    this._status(body.index ? "Reading the index…" : "Tracing and correlating…", "running");
    try {
      const result = await probeUnits(model, body, (p) => this._progress(p), abort.signal);
      if (abort.signal.aborted || model !== s.model) return;
      this._result = result;
      this._render();
      this._setState("done");
      this._order(result);
    } catch (e) {
      if (e.name === "AbortError") return;
      this._result = null;
      this._render();
      this._status(e instanceof ApiError ? e.message : `The probe failed: ${e.message}`, "failed");
    }
  }

  _progress(p) {
    const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
    this._status(p.stage === "fitting" ? "Fitting the linear probes…" : `Correlating every unit over the index: ${pct}%`, "running");
  }

  /** The heatmaps' rows in the ranking's order (the selected layer's units, best first), where the page orders rows. */
  _order(result) {
    const s = this.state;
    if (typeof s.setOrder !== "function") return;
    s.setOrder("probe", [...new Set(result.ranking.filter((e) => e.layer === s.layer).map((e) => e.unit))]);
  }

  /** Select a ranked unit: its layer and unit (and its gate, where the page has a gate selection). */
  _select(d) {
    const s = this.state;
    if (typeof s.setGate === "function" && d.gate) s.setGate(d.gate);
    s.select({ layer: Number(d.layer), unit: Number(d.unit) });
  }

  _status(text, st) {
    this.els.status.textContent = text;
    this._setState(st);
    return null;
  }

  _setState(st) {
    this.els.root.dataset.state = st;
    this.els.run.disabled = st === "running";
  }

  _render() {
    const r = this._result;
    const { ranking, linearText, save } = this.els;
    save.disabled = !r?.best;
    if (!r) {
      ranking.replaceChildren();
      linearText.textContent = "";
      this._drawCurve();
      return;
    }
    const gateName = (g) => SHORT[g] || g;
    ranking.replaceChildren(
      ...r.ranking.slice(0, SHOWN).map((e, n) =>
        el(
          "li",
          {},
          el(
            "button",
            { type: "button", class: "pr-row", "data-layer": String(e.layer), "data-unit": String(e.unit), "data-gate": e.gate, "data-testid": `probe-rank-${n}` },
            el("span", { class: "pr-unit", text: `${this.state.card.layers > 1 ? `layer ${e.layer} · ` : ""}unit ${e.unit} · ${gateName(e.gate)}` }),
            el("span", { class: "pr-r", text: `r = ${fmt(e.r, 3)}` }),
          ),
        ),
      ),
    );
    this._markSelected();
    const what = r.over === "index" ? `over the index (${r.index.steps.toLocaleString()} steps, ${r.index.docs} documents)` : `over this text (${r.feature.steps} tokens)`;
    this.els.status.textContent = `${r.units} units ranked ${what}; the best: unit ${r.best.unit} of ${gateName(r.best.gate)}, r = ${fmt(r.best.r, 3)}.`;
    linearText.textContent = r.linear ? linearLine(r.linear) : "";
    this._drawCurve();
  }

  _markSelected() {
    const s = this.state;
    for (const b of this.els.ranking.querySelectorAll("[data-unit]")) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.unit) === s.unit && Number(b.dataset.layer) === s.layer));
    }
  }

  _drawCurve() {
    const { plot } = this.els;
    const best = this._result?.best;
    plot.dataset.steps = String(best ? best.curve.unit.length : 0);
    if (!hasPlotly()) return;
    if (!best) {
      window.Plotly.purge(plot);
      plot.hidden = true;
      return;
    }
    plot.hidden = false;
    const c = best.curve;
    const x = c.unit.map((_, k) => c.start + k);
    const text = c.tokens.map((t) => `'${showToken(t)}'`);
    const label = this._result.feature.name || this._result.feature.pattern || "labels";
    const traces = [
      { x, y: c.feature, text, name: label, type: "scatter", mode: "lines", line: { color: chartColours().feature, width: 1.5, shape: "hv" }, hovertemplate: "t = %{x} %{text}<br>feature %{y}<extra></extra>" },
      { x, y: c.unit, text, name: `unit ${best.unit} (${SHORT[best.gate] || best.gate})`, yaxis: "y2", type: "scatter", mode: "lines", line: { color: chartColours().unit, width: 1.5 }, hovertemplate: "t = %{x} %{text}<br>unit %{y:.3f}<extra></extra>" },
    ];
    const layout = {
      font: FONT,
      height: 200,
      margin: { l: 44, r: 48, t: 8, b: 30 },
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.12, font: { size: 11 } },
      xaxis: axis({ title: { text: this._result.over === "index" ? "step in the index (the best unit's top context)" : "step", font: { size: 11 } }, tickfont: { family: MONO, size: 10 } }),
      yaxis: axis({ title: { text: "feature", font: { size: 11, color: chartColours().feature } } }),
      yaxis2: axis({ overlaying: "y", side: "right", title: { text: "unit", font: { size: 11, color: chartColours().unit } } }),
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
    };
    window.Plotly.react(plot, traces, layout, CONFIG);
  }

  async _save() {
    const r = this._result;
    if (!r?.best) return;
    const s = this.state;
    const label = r.feature.name || (r.feature.pattern ? `/${r.feature.pattern}/` : "labels");
    const unit = { layer: r.best.layer, unit: r.best.unit, gate: r.best.gate, label, r: r.best.r };
    try {
      const card = await saveKnownUnit(s.model, unit);
      s.updateCard(card);
      this.els.status.textContent = `Saved unit ${unit.unit} (${SHORT[unit.gate] || unit.gate}) as a known unit: '${label}'.`;
    } catch (e) {
      this._status(`The unit was not saved: ${e.message}`, "failed");
    }
  }
}

/** The linear probe's scores as one line: the model, the split and each score, as the server sent them. */
export function linearLine(lin) {
  const metric = lin.metric === "r2" ? "R²" : "accuracy";
  const held = lin.split === "documents" ? `${lin.test_docs} held-out documents (fit on ${lin.train_docs})` : "held-out parts of the text";
  const keys = lin.layer_all === null || lin.layer_all === undefined ? ["top1", "top8", "all"] : ["top1", "top8", "all", "layer_all"];
  const names = { top1: "top-1", top8: "top-8", all: `all ${lin.units.all}`, layer_all: `the layer's ${lin.units.layer_all} (${(lin.layer_gates || []).map((g) => SHORT[g] || g).join(" + ")})` };
  const scores = keys.map((k) => `${names[k]} ${lin[k] === null ? "–" : fmt(lin[k], 3)}`);
  const balanced = lin.balanced_accuracy ? ` (balanced accuracy ${keys.map((k) => fmt(lin.balanced_accuracy[k], 3)).join(" / ")})` : "";
  const sampled = lin.sampled ? ` ${lin.sampled}.` : "";
  return `Linear probe (${lin.model}, layer ${lin.layer} ${SHORT[lin.gate] || lin.gate}) on ${held}: ${metric} ${scores.join(" · ")}${balanced}.${sampled}`;
}
