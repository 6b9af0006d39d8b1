/**
 * Compare: a second run beside the one shown — another model on this text (recall-rnn beside recall-lstm), this
 * model on another text, or another checkpoint with its units paired to this one's by their activity. One timeline
 * and one scrubber: state.t drives both. The server computes everything (POST /api/compare): each run's likeliest
 * next tokens and the log-likelihood of the token that came, their difference, b − a of the state (C, or h) for every
 * unit, and the pairing; this view draws them.
 *
 * Change costs: "t" and "unit" move the cursors and rewrite the table of the step (no request); "compare", "trace",
 * "layer" and "model" ask again once the text has been still for SETTLE_MS. The comparison is in the URL (vs=,
 * vs_text=, vs_match=1: state.js).
 */

import { compareRuns } from "./api.js";
import { SHORT, el, fmt, showToken } from "./format.js";
import { CONFIG, FONT, axis, chartColours, onColourScheme, plotlyReady } from "./plotting.js";

/** How long the text must be still before the comparison is asked for again (ms). */
const SETTLE_MS = 300;

export class CompareView {
  /** nodes: {root, model (select), text (input), match (checkbox), note, at, logp, diff, pairs}. */
  constructor(nodes, state) {
    this.nodes = nodes;
    this.state = state;
    this.data = null; // the server's answer shown
    this.asked = null; // the request it answers
    this._timer = 0;
    this._asking = null;
    const push = () => {
      const model = nodes.model.value || null;
      const text = nodes.text.value === "" ? null : nodes.text.value;
      const unit = state.compare?.model === model ? state.compare.unit : null; // b's own unit, while b is the same model
      state.setCompare(model || text !== null ? { model, text, match: nodes.match.checked, unit } : null);
    };
    nodes.model.addEventListener("change", push);
    nodes.match.addEventListener("change", push);
    nodes.text.addEventListener("change", push); // on leaving the box or Enter: not a request a keystroke
    state.subscribe((changed) => this._onChange(changed));
    onColourScheme(() => this.data && window.Plotly && this._draw()); // run a, run b and the cursor: chartColours()
    for (const div of [nodes.logp, nodes.diff]) {
      new ResizeObserver(() => this.data && window.Plotly && this._draw()).observe(div);
    }
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("cards") || changed.has("model")) this._options();
    if (changed.has("compare")) this._sync();
    // b's own unit (vs_unit) changes what side.js selects in b, not the pair: no new request for it
    const key = JSON.stringify(s.compare && { ...s.compare, unit: null });
    const moved = changed.has("compare") && key !== this._key;
    this._key = key;
    if (moved || ["model", "layer", "trace"].some((k) => changed.has(k))) {
      clearTimeout(this._timer);
      this._timer = setTimeout(() => this._ask(), SETTLE_MS);
    }
    if ((changed.has("t") || changed.has("unit")) && this.data) {
      this._cursors();
      this._at();
      this._pairs();
    }
    if (changed.has("model") && !s.compare) this._clear("");
  }

  /** The models that can stand beside this one: every other text model. */
  _options() {
    const s = this.state;
    const sel = this.nodes.model;
    const keep = s.compare?.model ?? "";
    sel.replaceChildren(new Option("— none —", ""));
    for (const c of s.cards) {
      if (c.id === s.model || c.input !== s.card?.input) continue;
      sel.append(new Option(`${c.id} (${c.cell}, ${c.units ?? c.hidden_size} units)`, c.id));
    }
    sel.value = [...sel.options].some((o) => o.value === keep) ? keep : "";
  }

  _sync() {
    const c = this.state.compare;
    this._options();
    this.nodes.text.value = c?.text ?? "";
    this.nodes.match.checked = !!c?.match;
    this.nodes.root.dataset.active = c ? "true" : "false";
  }

  _clear(note) {
    this._asking?.abort();
    if (window.Plotly) for (const div of [this.nodes.logp, this.nodes.diff]) window.Plotly.purge(div);
    this.data = null;
    this.asked = null;
    this.nodes.at.replaceChildren();
    this.nodes.pairs.replaceChildren();
    this.nodes.note.textContent = note;
    this.nodes.root.dataset.ready = "false";
    this.state.setCompared(null);
  }

  async _ask() {
    const s = this.state;
    const c = s.compare;
    if (!c) return this._clear("Choose a model to set beside this one, or type another text: both runs share the scrubber.");
    const other = c.model ? s.cardOf(c.model) : s.card;
    if (!other) return this._clear(`Model '${c.model}' is not on this server.`);
    if (!s.tracedText) return this._clear("Type a text first.");
    if (other.id === s.model && (c.text === null || c.text === s.tracedText)) {
      return this._clear("Choose another model or another text: this run is the same as the one shown.");
    }
    const layer = Math.min(s.layer, other.layers - 1, s.card.layers - 1);
    const body = { model: s.model, text: s.tracedText, model_b: other.id, text_b: c.text, layer, match: c.match, unit: s.unit, unit_b: c.unit };
    this._asking?.abort();
    const ctl = new AbortController();
    this._asking = ctl;
    this.nodes.note.textContent = "Comparing…";
    try {
      const [out] = await Promise.all([compareRuns(body, ctl.signal), plotlyReady()]);
      if (ctl.signal.aborted) return;
      this.data = out;
      this.asked = body;
      this._draw();
      this._at();
      this._pairs();
      this.nodes.note.textContent = this._summary();
      this.nodes.root.dataset.ready = "true";
      s.setCompared(out); // side.js opens run b from out.state.b
    } catch (e) {
      if (e.name === "AbortError") return;
      this._clear(`Not compared: ${e.message}`);
    }
  }

  /** Names of the two runs as the page says them. */
  _names() {
    const { model, model_b: b } = this.asked;
    if (b !== model) return [model, b];
    return [`${model} (this text)`, `${model} (the other text)`];
  }

  _summary() {
    const d = this.data;
    const [a, b] = this._names();
    const parts = [`${b} beside ${a}, layer ${d.layer}, over ${d.steps} common steps`];
    if (d.steps_a !== d.steps_b) parts[0] += ` (${d.steps_a} and ${d.steps_b} steps)`;
    const scored = d.logp && [[a, d.logp.scored.a], [b, d.logp.scored.b]].filter(([, w]) => w);
    if (scored?.length) {
      const same = scored.length === 2 && scored[0][1] === scored[1][1];
      const who = same ? `both were trained to predict only ${scored[0][1]}` : scored.map(([n, w]) => `${n} was trained to predict only ${w}`).join("; ");
      parts.push(`the likelihood of the other steps means nothing: ${who} — read the table at that step`);
    } else if (d.logp) {
      const diff = d.logp.mean_difference;
      parts.push(`mean log p of the next token ${fmt(d.logp.mean_a)} and ${fmt(d.logp.mean_b)} (b − a = ${diff === null ? "—" : (diff >= 0 ? "+" : "") + fmt(diff)})`);
    }
    if (d.matching) {
      const m = d.matching;
      const id = m.identity_abs_r === null ? "" : `; unit k with unit k: ${fmt(m.identity_abs_r)}`;
      parts.push(`units paired by ${SHORT[m.gate]}: mean |r| ${fmt(m.mean_abs_r)}${id}`);
    } else if (!d.difference) {
      const other = this.state.cardOf(this.asked.model_b);
      const same = other && other.units === this.state.card.units;
      parts.push(same ? `unit k of ${b} is not unit k of ${a}: pair the units to set them against each other` : "the layers differ in width: their units are not set against each other");
    }
    return parts.join("; ") + ".";
  }

  _draw() {
    const d = this.data;
    if (!d || !window.Plotly) return;
    const [a, b] = this._names();
    const steps = [...Array(d.steps).keys()];
    const tokens = this.state.trace.tokens.slice(0, d.steps).map(showToken);
    const shapes = this._shapes();
    // a task that scored only some steps (recall: the answer) gives the other steps' likelihood no meaning: not drawn
    if (d.logp && !d.logp.scored.a && !d.logp.scored.b) {
      this.nodes.logp.hidden = false;
      const width = this.nodes.logp.clientWidth || 600;
      const data = [
        { type: "scatter", mode: "lines", name: a, x: steps, y: d.logp.a, line: { color: chartColours().a, width: 1.5 }, customdata: tokens, hovertemplate: "t = %{x} %{customdata}: log p = %{y:.2f}<extra>" + a + "</extra>" },
        { type: "scatter", mode: "lines", name: b, x: steps, y: d.logp.b, line: { color: chartColours().b, width: 1.5, dash: "dot" }, hovertemplate: "t = %{x}: log p = %{y:.2f}<extra>" + b + "</extra>" },
      ];
      const layout = {
        width, height: 180, margin: { l: 52, r: 12, t: 26, b: 30 }, font: FONT, shapes, hovermode: "x",
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
        title: { text: "log p of the token that came next", x: 0, xref: "paper", font: { size: 13 } },
        legend: { orientation: "h", x: 1, xanchor: "right", y: 1.18, font: { size: 11 } },
        xaxis: axis({ range: [-0.5, d.steps - 0.5], title: { text: "step t", standoff: 2, font: { size: 11 } } }),
        yaxis: axis({ title: { text: "log p", standoff: 4, font: { size: 11 } } }),
      };
      window.Plotly.react(this.nodes.logp, data, layout, CONFIG);
      this._wire(this.nodes.logp);
    } else {
      window.Plotly.purge(this.nodes.logp);
      this.nodes.logp.hidden = true;
    }
    // b − a once the units correspond (one model on two texts, or two models paired); else b's own values
    const diff = !!d.difference;
    const gate = Object.keys(diff ? d.difference : d.b)[0];
    const z = (diff ? d.difference : d.b)[gate]; // (steps, units): drawn units × steps
    const units = z.length ? z[0].length : 0;
    let big = 0;
    for (const row of z) for (const v of row) big = Math.max(big, Math.abs(v));
    const rows = [...Array(units).keys()].map((u) => z.map((r) => r[u]));
    const title = diff
      ? `b − a of ${SHORT[gate]} for every unit${d.matching ? ", b's units paired to a's" : ""}`
      : `${SHORT[gate]} of ${b} (its own units)`;
    const layout = {
      width: this.nodes.diff.clientWidth || 600, height: Math.max(140, Math.min(260, 2 * units + 70)),
      margin: { l: 52, r: 64, t: 26, b: 30 }, font: FONT, shapes, paper_bgcolor: "rgba(0,0,0,0)",
      title: { text: title, x: 0, xref: "paper", font: { size: 13 } },
      xaxis: axis({ range: [-0.5, d.steps - 0.5], title: { text: "step t", standoff: 2, font: { size: 11 } } }),
      yaxis: axis({ range: [units - 0.5, -0.5], title: { text: diff ? "unit of a" : `unit of ${b}`, standoff: 4, font: { size: 11 } } }),
    };
    const name = diff ? "b − a" : SHORT[gate];
    const data = [{
      type: "heatmap", z: rows, zmin: -big || -1, zmax: big || 1, colorscale: "RdBu", reversescale: true,
      colorbar: { thickness: 10, len: 0.9, title: { text: name, side: "top", font: { size: 11 } } },
      hovertemplate: `unit %{y}, t = %{x}: ${name} = %{z:.3f}<extra></extra>`,
    }];
    window.Plotly.react(this.nodes.diff, data, layout, CONFIG);
    this.nodes.diff.dataset.shows = diff ? "difference" : "b";
    this._wire(this.nodes.diff, diff); // a click on b − a selects a's unit; on b's own units, only the step
    this.nodes.root.dataset.t = String(this.state.t);
  }

  /** The cursor at step t, on every chart. */
  _shapes() {
    const t = this.state.t;
    return [{ type: "line", xref: "x", yref: "paper", x0: t, x1: t, y0: 0, y1: 1, line: { color: chartColours().cursor, width: 1 } }];
  }

  _cursors() {
    if (!window.Plotly) return;
    for (const div of [this.nodes.logp, this.nodes.diff]) {
      if (!div.hidden && div._fullLayout) window.Plotly.relayout(div, { shapes: this._shapes() });
    }
    this.nodes.root.dataset.t = String(this.state.t);
  }

  _wire(div, units = false) {
    if (div._wired) return;
    div._wired = true;
    div.on("plotly_click", (ev) => {
      const pt = ev.points[0];
      if (!pt) return;
      const t = Math.round(Number(pt.x));
      if (units) this.state.select({ t, unit: Math.round(Number(pt.y)) }); // row u is unit u of run a
      else this.state.setT(t);
    });
  }

  /** The step t on both sides: the token read, the three likeliest next tokens, the log p of the one that came. */
  _at() {
    const d = this.data;
    const t = this.state.t;
    const box = this.nodes.at;
    box.replaceChildren();
    if (t >= d.steps) {
      box.append(el("p", { class: "sub", text: `Step ${t} is past the shorter run's ${d.steps} steps.` }));
      return;
    }
    const [a, b] = this._names();
    const token = showToken(this.state.trace.tokens[t] ?? "");
    const table = el("table", { class: "cmp-table", "data-testid": "compare-table" });
    const head = el("tr", {}, el("th", { text: `t = ${t}, read ${token}` }), el("th", { text: a, class: "cmp-a" }), el("th", { text: b, class: "cmp-b" }));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    const cells = (side) => {
      const top = d.top?.[side]?.[t];
      return top ? top.map((q) => `${showToken(q.token)} ${fmt(q.p * 100, 1)}%`).join(" · ") : "—";
    };
    body.append(el("tr", {}, el("th", { text: "likeliest next" }), el("td", { text: cells("a"), "data-testid": "compare-top-a" }), el("td", { text: cells("b"), "data-testid": "compare-top-b" })));
    if (d.logp) {
      const lp = (x) => (x === null || x === undefined ? "— (not known yet)" : fmt(x));
      body.append(el("tr", {}, el("th", { text: "log p of what came" }), el("td", { text: lp(d.logp.a[t]) }), el("td", { text: lp(d.logp.b[t]) })));
    }
    table.append(body);
    box.append(table);
  }

  /** The selected unit's partner in run b, and the pairs with the weakest match. */
  _pairs() {
    const d = this.data;
    const box = this.nodes.pairs;
    box.replaceChildren();
    if (!d.matching) return;
    const u = this.state.unit;
    const pair = d.matching.pairs.find((p) => p.a === u);
    const text = pair ? `Unit ${u} of a acts like unit ${pair.b} of b (r = ${fmt(pair.r, 3)}${pair.r < 0 ? ": mirrored" : ""}).` : `Unit ${u} of a has no partner in b.`;
    box.append(el("p", { class: "cmp-pair", "data-testid": "compare-pair", text }));
  }
}
