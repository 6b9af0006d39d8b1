/**
 * "What this unit does": the selected unit's dashboard over the model's corpus index (GET
 * /api/models/{id}/units/{layer}/{unit}?gate=..): the histogram of every value the index saw, its
 * statistics, the top and bottom contexts and contexts from each decile band (snippets coloured by the
 * unit, the peak outlined), and for the last layer of a model with a head the outputs it pushes up and
 * down (the head's weights: a direct effect). "Your text" colours the page's own trace around step t on
 * the same scale. Clicking a context opens its document in the main view at the peak, with the unit
 * selected (state.openContext). Without an index the panel says so and follows the index's status.
 *
 * The index's status comes from state.index (kept by indexer.js; asked for here when nothing keeps it).
 *
 * Change costs: "model" | "layer" | "unit" | "gate" | "index" fetch a dashboard (debounced; the last few are kept);
 * "t" | "trace" | "focus" recolour the ~100 spans of "Your text".
 */

import { indexDocument, indexStatus, unitDashboard } from "./api.js";
import { CELL_SOFT, colourOf, darkTextOn } from "./colors.js";
import { PLAIN, el, fmt, showToken } from "./format.js";
import { Lazy } from "./lazy.js";
import { CONFIG, FONT, axis, chartColours, hasPlotly, onColourScheme, plotlyReady } from "./plotting.js";

/** Wait after a selection change before asking for its dashboard (ms): scrolling through units asks once. */
const FETCH_DELAY_MS = 120;
/** Dashboards kept for going back to a unit (most recent last). */
const KEPT = 24;
/** How often the panel asks for the index's status while it is being built (ms). */
const STATUS_EVERY_MS = 2000;
/** Steps of the page's text shown before and after t in "Your text". */
const OWN_BEFORE = 60;
const OWN_AFTER = 30;
/** Height of the histogram (px). */
const HIST_HEIGHT = 170;

/** The share of steps a fraction is, for reading. */
const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(x < 0.001 && x > 0 ? 2 : 1)}%`);
/** An integer with thousands separators. */
const count = (n) => Number(n).toLocaleString("en-US");

export class Dashboard {
  /** els: {root (the panel's body), gate (select), status (the corpus line)} */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    this.data = null; // the dashboard shown
    this._kept = new Map(); // key -> dashboard
    this._ready = new Set(); // models whose index was ready when last asked
    this._timer = 0;
    this._statusTimer = 0;
    this._abort = null;
    this._want = ""; // the key asked for last
    this._ownFrame = 0;
    this.hist = el("div", { class: "db-hist", "data-testid": "dashboard-histogram" });
    this._width = 0;
    new ResizeObserver(() => {
      const w = els.root.clientWidth;
      if (!w || w === this._width) return;
      this._width = w;
      // the histogram is drawn again at its new width (a phone turned, a window narrowed): its width is fixed
      if (this.data && this.hist._fullLayout) requestAnimationFrame(() => this.data && this._drawHistogram(this.data));
    }).observe(els.root);
    this.summary = el("p", { class: "db-summary", "data-testid": "dashboard-stats" });
    this.legend = el("div", { class: "db-legend", "data-testid": "dashboard-legend" });
    this.top = el("ol", { class: "db-contexts", "data-testid": "dashboard-top" });
    this.bottom = el("ol", { class: "db-contexts", "data-testid": "dashboard-bottom" });
    this.bands = el("div", { class: "db-bands", "data-testid": "dashboard-bands" });
    this.pushes = el("div", { class: "db-pushes", "data-testid": "dashboard-pushes" });
    this.own = el("div", { class: "db-snippet db-own", "data-testid": "dashboard-own" });
    this.ownNote = el("p", { class: "db-note" });
    this.body = el(
      "div",
      { class: "db-body" },
      el(
        "div",
        { class: "db-grid" },
        el("div", { class: "db-dist" }, el("h3", { text: "Every value the index saw" }), this.hist, this.summary, this.legend),
        el("div", { class: "db-out" }, this.pushes),
      ),
      el("div", { class: "db-lists" },
        el("section", {}, el("h3", { text: "Top contexts" }), this.top),
        el("section", {}, el("h3", { text: "Bottom contexts" }), this.bottom),
      ),
      el("details", { class: "db-band-box", open: true }, el("summary", { text: "Contexts from each decile band" }), this.bands),
      el("section", { class: "db-own-box" }, el("h3", { text: "Your text, around step t" }), this.ownNote, this.own),
    );
    this.empty = el("div", { class: "db-empty", "data-testid": "dashboard-empty" });
    els.root.append(this.empty, this.body);
    els.gate.addEventListener("change", () => state.setGate(els.gate.value));
    els.root.addEventListener("click", (ev) => this._click(ev));
    els.root.addEventListener("keydown", (ev) => {
      if ((ev.key === "Enter" || ev.key === " ") && ev.target.closest?.(".db-context")) {
        ev.preventDefault();
        this._click(ev);
      }
    });
    // the panel below the fold redraws "your text" when it is on screen (a scrub step paid ~1 ms for it while it was away)
    this._ownLazy = new Lazy(els.root.closest(".panel") ?? els.root);
    state.subscribe((changed) => this._onChange(changed));
    onColourScheme(() => this.data && !this.body.hidden && this._drawHistogram(this.data)); // the mean, the bars' edges
  }

  _onChange(changed) {
    if (changed.has("model")) this._build();
    if (changed.has("index") || changed.has("model")) this._markGates();
    if (changed.has("index")) {
      const now = this.state.index?.state ?? null;
      if (now === "ready" && this._indexState !== "ready") this._kept.clear(); // a new index: new dashboards
      this._indexState = now;
    }
    if (["model", "layer", "unit", "gate", "index"].some((k) => changed.has(k))) {
      this.els.gate.value = this.state.gate;
      this._schedule();
    }
    if (["t", "trace", "focus", "gate", "unit", "layer"].some((k) => changed.has(k))) this._scheduleOwn();
  }

  _build() {
    const card = this.state.card;
    this.els.gate.replaceChildren(...card.gates.map((g) => el("option", { value: g, text: PLAIN[g] || g })));
    this.els.gate.value = this.state.gate;
    this._kept.clear();
    this._abort?.abort(); // the last model's dashboard is no use now (and that model may be going away)
    clearTimeout(this._statusTimer);
    this._show(null, "Loading the unit's dashboard…");
  }

  /** Mark the gates the index did not record (it holds h and C unless asked for more). */
  _markGates() {
    const held = this.state.index?.info?.gates;
    for (const option of this.els.gate.options) {
      const missing = Array.isArray(held) && !held.includes(option.value);
      option.textContent = `${PLAIN[option.value] || option.value}${missing ? " — not in the index" : ""}`;
    }
  }

  _key() {
    const s = this.state;
    return `${s.model}|${s.layer}|${s.unit}|${s.gate}`;
  }

  _schedule() {
    clearTimeout(this._timer);
    const key = this._key();
    if (this._kept.has(key)) {
      this._want = key;
      const kept = this._kept.get(key);
      if (this.data !== kept || this.body.hidden) this._render(kept); // shown already: nothing to redraw
      return;
    }
    this._timer = setTimeout(() => this._fetch(), FETCH_DELAY_MS);
  }

  async _fetch() {
    clearTimeout(this._statusTimer);
    const s = this.state;
    const key = this._key();
    const model = s.model;
    this._want = key;
    this._abort?.abort();
    const abort = (this._abort = new AbortController());
    this.els.root.classList.add("is-loading");
    try {
      if (s.index !== undefined) {
        // the index's status is the state's (indexer.js keeps it in step with the server, progress included)
        if (s.index === null) return this._show(null, "Looking for this model's corpus index…", "looking");
        if (s.index.state !== "ready") return this._noIndex(model, s.index);
      } else if (!this._ready.has(model)) {
        // no one keeps the status: ask for it (a model without an index is no error, and no refusal is logged)
        const status = await indexStatus(model, { signal: abort.signal });
        if (this._want !== key) return;
        if (status.state !== "ready") return this._noIndex(model, status, true);
        this._ready.add(model);
      }
      const data = await unitDashboard(model, s.layer, s.unit, s.gate, { signal: abort.signal });
      if (this._want !== key) return;
      this._kept.set(key, data);
      if (this._kept.size > KEPT) this._kept.delete(this._kept.keys().next().value);
      this._render(data);
    } catch (e) {
      if (e.name === "AbortError" || this._want !== key) return;
      if (e.status === 409) this._ready.delete(model); // the index went away: its status says why
      this._show(null, `The unit's dashboard did not load: ${e.message}`);
    } finally {
      if (this._abort === abort) this.els.root.classList.remove("is-loading");
    }
  }

  /** No index yet: say so with its status (GET /api/models/{id}/index); while it is being built, ask again
   *  (``poll``: when the state does not follow the status itself). */
  _noIndex(model, status, poll = false) {
    const st = status?.state;
    const how = `index a corpus (“Index a corpus…”, or gatescope index ${model} CORPUS --out DIR)`;
    if (st === "building") {
      const done = progressOf(status.progress);
      const shown = done === null ? "" : ` ${Math.floor(100 * done)}%`;
      const what = status.corpus ? ` of ${status.corpus}` : "";
      const wait = status.waiting ? " (waiting for another build to end)" : "";
      this._show(null, `This model has no index yet: one${what} is being built${shown}${wait}. The dashboard appears when it is ready.`, "building");
      if (poll) this._statusTimer = setTimeout(() => this.state.model === model && this._fetch(), STATUS_EVERY_MS);
    } else if (st === "failed") {
      this._show(null, `This model has no index: building it failed (${status.error || "see the server's log"}); ${how}.`, "failed");
    } else {
      this._show(null, `This model has no index yet: ${how}. Its dashboards appear when one is ready.`, "none");
    }
  }

  /** Show a message instead of a dashboard (data null), or the dashboard. */
  _show(data, message = "", kind = "") {
    this.empty.hidden = Boolean(data);
    this.body.hidden = !data;
    this.empty.textContent = message;
    this.empty.dataset.state = kind;
    if (!data) this.els.status.textContent = "";
  }

  // ---- the dashboard

  _render(d) {
    clearTimeout(this._statusTimer);
    this.data = d;
    this._show(d);
    const c = d.corpus;
    const one = c.sources.length === 1 && !/^<.*>$/.test(c.sources[0]) ? ` (${c.sources[0]})` : "";
    const files = c.n_sources > 1 ? ` (${count(c.n_sources)} files)` : one;
    const title = this.state.index?.info?.corpus || c.name; // the server's title for it ("held-out Python"), else its name
    this.els.status.textContent = `Over ${count(c.docs)} documents, ${count(c.steps)} steps of ${title}${files}.`;
    this.els.status.title = c.carry ? "indexed with the state carried across documents (--carry): a document opened here starts from zeros, so its values can differ a little" : "";
    this.els.root.dataset.unit = String(d.unit);
    this.els.root.dataset.layer = String(d.layer);
    this.els.root.dataset.gate = d.gate;
    this._drawHistogram(d);
    this._summary(d);
    this._legend(d);
    this.top.replaceChildren(...d.top.map((ctx, k) => this._contextItem(d, ctx, `top-${k}`)));
    this.bottom.replaceChildren(...d.bottom.map((ctx, k) => this._contextItem(d, ctx, `bottom-${k}`)));
    if (!d.top.length) this.top.replaceChildren(el("li", { class: "db-none", text: "No steps in the index." }));
    this._bands(d);
    this._pushes(d);
    this._scheduleOwn();
  }

  /** The colour of a value on the dashboard's scale (C: ± the largest |C| the index saw). */
  _colour(d, v) {
    return colourOf(d.gate, v, d.scale.range[1]);
  }

  _drawHistogram(d) {
    if (!hasPlotly()) {
      plotlyReady().then(() => this.data === d && this._drawHistogram(d), () => {});
      return;
    }
    const { edges, counts } = d.histogram;
    const x = counts.map((_, k) => (edges[k] + edges[k + 1]) / 2);
    const widths = counts.map((_, k) => edges[k + 1] - edges[k]);
    const colours = x.map((v) => this._colour(d, v));
    const mean = d.stats.mean;
    const layout = {
      width: this.hist.clientWidth || 420,
      height: HIST_HEIGHT,
      margin: { l: 52, r: 10, t: 6, b: 34 },
      font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      bargap: 0,
      xaxis: axis({ range: [edges[0], edges[edges.length - 1]], title: { text: `${PLAIN[d.gate] || d.gate}: from ${fmt(edges[0], 3)} to ${fmt(edges[edges.length - 1], 3)}`, standoff: 4, font: { size: 11 } }, nticks: 7 }),
      yaxis: axis({ title: { text: "steps", standoff: 4, font: { size: 11 } }, nticks: 4, rangemode: "tozero" }),
      shapes: mean === null ? [] : [{ type: "line", xref: "x", yref: "paper", x0: mean, x1: mean, y0: 0, y1: 1, line: { color: chartColours().mean, width: 1, dash: "dot" } }],
    };
    const data = [{ type: "bar", x, y: counts, width: widths, marker: { color: colours, line: { width: 0.6, color: chartColours().barEdge } }, hovertemplate: "%{x:.3f}: %{y} steps<extra></extra>" }];
    Plotly.react(this.hist, data, layout, CONFIG);
  }

  _summary(d) {
    const st = d.stats;
    const parts = [`mean ${fmt(st.mean, 3)}`, `std ${fmt(st.std, 3)}`, `min ${fmt(st.min, 3)}`, `max ${fmt(st.max, 3)}`];
    if (st.saturation) parts.push(`below ${fmt(st.saturation.lo, 1)}: ${pct(st.low)}`, `above ${fmt(st.saturation.hi, 1)}: ${pct(st.high)}`);
    this.summary.textContent = parts.join(" · ");
    this.summary.title = "the dotted line marks the mean";
  }

  _legend(d) {
    const [lo, hi] = d.scale.range;
    const cell = d.scale.kind === "cell";
    const A = Math.asinh(hi / CELL_SOFT);
    const valueAt = (x) => (cell ? CELL_SOFT * Math.sinh((2 * x - 1) * A) : lo + (hi - lo) * x);
    const stops = Array.from({ length: 9 }, (_, k) => this._colour(d, valueAt(k / 8)));
    const note = cell
      ? `C is unbounded: the colours span ±${fmt(hi, 3)}, the largest |C| of this unit in the index (asinh scale: linear within ±1, logarithmic beyond).`
      : d.scale.kind === "gate"
        ? "A sigmoid gate: from 0 (shut) to 1 (open)."
        : "tanh-valued: from −1 to 1, white at 0.";
    this.legend.replaceChildren(
      el("span", { class: "lo", text: fmt(lo, 2) }),
      el("span", { class: "ramp", style: `background: linear-gradient(90deg, ${stops.join(", ")})` }),
      el("span", { class: "hi", text: fmt(hi, 2) }),
      el("span", { class: "db-note", text: note }),
    );
  }

  /** A context as a list item: its snippet coloured by the unit, the peak outlined, where it comes from. */
  _contextItem(d, ctx, id) {
    const snippet = this._snippet(d, ctx.tokens, ctx.values, ctx.peak);
    // a list of texts has no file names ("<texts>"): its documents are numbered
    const named = !/^<.*>$/.test(ctx.source);
    const from = named ? `${ctx.source}${d.corpus.per === "line" ? `:${ctx.line + 1}` : ""}` : `document ${ctx.doc}`;
    const where = `${from} · step ${count(ctx.t)}`;
    return el(
      "li",
      {},
      el(
        "div",
        {
          class: "db-context",
          role: "button",
          tabindex: "0",
          "data-context": id,
          "data-testid": "dashboard-context",
          title: `Open document ${ctx.doc} at step ${ctx.t} in the main view, with this unit selected`,
        },
        el("span", { class: "db-value", text: fmt(ctx.value, 3) }),
        snippet,
        el("span", { class: "db-where", text: where }),
      ),
    );
  }

  /** Tokens as spans coloured by their values, the peak outlined. */
  _snippet(d, tokens, values, peak) {
    const box = el("span", { class: "db-snippet" });
    const words = this.state.card?.tokenizer === "word" || this.state.card?.input === "vectors";
    tokens.forEach((tok, k) => {
      const v = values[k];
      const span = el("span", { text: showToken(tok).replace(/␣/g, " "), title: `${fmt(v, 3)}` });
      if (v !== null && v !== undefined) {
        span.style.background = this._colour(d, v);
        span.style.color = darkTextOn(d.gate, v, d.scale.range[1]) ? "#111" : "#fff";
      }
      if (k === peak) span.className = "is-peak";
      box.append(span);
      if (words && k < tokens.length - 1) box.append(" ");
    });
    return box;
  }

  _bands(d) {
    const rows = d.bands.map((b) =>
      el(
        "div",
        { class: "db-band", "data-band": String(b.band) },
        el("span", { class: "db-band-name", text: `${b.band * 10}–${b.band * 10 + 10}%`, title: `${fmt(b.lo, 3)} ≤ value ${b.band === 9 ? "≤" : "<"} ${fmt(b.hi, 3)}` }),
        el("span", { class: "db-band-range", text: `${fmt(b.lo, 3)} … ${fmt(b.hi, 3)}` }),
        el("ol", { class: "db-contexts" }, ...b.contexts.map((ctx, k) => this._contextItem(d, ctx, `band-${b.band}-${k}`))),
      ),
    );
    this.bands.replaceChildren(...rows.reverse()); // the highest band first, as the top contexts
  }

  _pushes(d) {
    const p = d.pushes;
    this.pushes.hidden = !p;
    if (!p) {
      this.pushes.replaceChildren();
      return;
    }
    const top = Math.max(1e-12, ...p.up.map((x) => Math.abs(x.weight)), ...p.down.map((x) => Math.abs(x.weight)));
    const list = (items, cls) =>
      el(
        "ol",
        { class: `db-push ${cls}` },
        ...items.map((x) =>
          el(
            "li",
            {},
            el("span", { class: `tok${p.kind === "next" ? "" : " is-label"}`, text: p.kind === "next" ? showToken(x.label) : x.label }),
            el("span", { class: "bar" }, el("span", { style: `width:${((100 * Math.abs(x.weight)) / top).toFixed(1)}%` })),
            el("span", { class: "w", text: `${x.weight > 0 ? "+" : ""}${fmt(x.weight, 2)}` }),
          ),
        ),
      );
    const what = p.kind === "next" ? "tokens" : p.kind === "classes" ? "classes" : "outputs";
    this.pushes.replaceChildren(
      el("h3", { text: `The ${what} it pushes up and down` }),
      el("p", { class: "db-note", text: `${p.title[0].toUpperCase()}${p.title.slice(1)}: ${p.note}.` }),
      el(
        "div",
        { class: "db-push-cols" },
        el("div", {}, el("h4", { text: "up" }), p.up.length ? list(p.up, "is-up") : el("p", { class: "db-note", text: "none" })),
        el("div", {}, el("h4", { text: "down" }), p.down.length ? list(p.down, "is-down") : el("p", { class: "db-note", text: "none" })),
      ),
    );
  }

  // ---- your text

  _scheduleOwn() {
    this._ownLazy.run(() => this._drawOwn()); // on screen: when idle after the step's frame; else once it is back
  }

  /** The page's text around t, coloured by this unit's gate on the dashboard's scale (values from the trace). */
  _drawOwn() {
    const s = this.state;
    const d = this.data;
    if (!d || d.layer !== s.layer || d.unit !== s.unit || d.gate !== s.gate) return;
    const vals = s.currentLines()?.[s.gate];
    if (!s.T || !vals) {
      this.ownNote.textContent = s.T ? "Reading the unit's values…" : "Type in the text box above: the unit's values on your text show here, on the scale of the contexts.";
      this.own.replaceChildren();
      return;
    }
    const t = s.t;
    const a = Math.max(0, t - OWN_BEFORE);
    const b = Math.min(s.T, t + OWN_AFTER + 1);
    const v = vals[t];
    const band = bandOf(d.stats.deciles, v);
    this.ownNote.textContent = `At t = ${t}: ${fmt(v, 3)}${band === null ? "" : `, in the index's ${band * 10}–${band * 10 + 10}% band`}. Click a character to move t.`;
    const box = this._snippet(d, s.trace.tokens.slice(a, b), Array.from(vals.slice(a, b)), t - a);
    [...box.children].forEach((span, k) => (span.dataset.t = String(a + k)));
    this.own.replaceChildren(box);
  }

  // ---- opening a context

  _click(ev) {
    const own = ev.target.closest?.(".db-own span[data-t]");
    if (own) {
      this.state.setT(Number(own.dataset.t));
      return;
    }
    const node = ev.target.closest?.(".db-context");
    if (!node || !this.data) return;
    const ctx = contextOf(this.data, node.dataset.context);
    if (ctx) this._open(this.data, ctx);
  }

  /** Open a context's document in the main view at its peak with the unit selected: the whole document
   *  when the page can trace it, else the snippet. */
  async _open(d, ctx) {
    const s = this.state;
    const model = s.model;
    const whole = ctx.doc_steps <= d.text_limit;
    const docStart = ctx.pos - ctx.t;
    let doc;
    try {
      doc = whole ? await indexDocument(model, ctx.doc) : await indexDocument(model, ctx.doc, ctx.start - docStart, ctx.stop - docStart);
    } catch (e) {
      this.empty.hidden = false;
      this.empty.textContent = `The document did not open: ${e.message}`;
      return;
    }
    if (s.model !== model) return;
    s.openContext({ text: doc.text, t: whole ? ctx.t : ctx.peak, unit: d.unit, layer: d.layer });
  }
}

/** The context a list item names ("top-3", "bottom-0", "band-7-1"). */
function contextOf(d, id) {
  const [list, a, b] = id.split("-");
  if (list === "top") return d.top[Number(a)];
  if (list === "bottom") return d.bottom[Number(a)];
  return d.bands.find((x) => x.band === Number(a))?.contexts[Number(b)];
}

/** The decile band a value falls in (deciles[j] <= v < deciles[j + 1]; the last closed), or null outside. */
export function bandOf(deciles, v) {
  if (!deciles || v === null || v === undefined || v < deciles[0] || v > deciles[10]) return null;
  for (let j = 0; j < 10; j++) if (v < deciles[j + 1]) return j;
  return 9;
}

/** A build's progress as a fraction (the status's own fraction, else characters or documents done), or null. */
function progressOf(p) {
  if (!p) return null;
  if (typeof p.percent === "number") return p.percent / 100;
  if (typeof p.fraction === "number") return p.fraction;
  if (p.total_chars) return p.chars / p.total_chars;
  if (p.total_docs) return p.docs / p.total_docs;
  return null;
}
