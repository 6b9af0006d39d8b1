/**
 * One unit up close: its gates as curves over time (plotly, the exact focus lines, a t cursor), the
 * input text coloured by its value (Karpathy's cell figures), and, for models with an output head, what
 * it predicts at t: the top-5 next tokens (a language model), every class's probability by name (a
 * classifier; with head_at "last" only the last step's answer counts, and it is marked), or the
 * predicted values as numbers (a regressor; their curve over time is series.js's).
 *
 * Change costs: "t" moves the cursor, the outlined character and the predictions; "focus" redraws
 * the curves (in an animation frame) and recolours the text; "trace" rebuilds the text from the
 * first changed step; "window" (a text longer than state.windowSize) redraws the curves and the text of the
 * window's steps only: a 20,000-step text costs what a window costs.
 *
 * plotly.js draws the curves' frame (axes, ticks, titles) and the exports; on screen the lines themselves are a
 * <canvas> over its plot area (as the heatmaps' cells are): a keystroke redraws 6 × 400 points in well under a
 * millisecond, where plotly's restyle of the same traces took 45-100 ms a key on this machine.
 *
 * The curves answer the pointer: a readout (t, token, each gate's value at that step) follows it, and a click
 * selects that step.
 */

import { defaultTextGate, directionOf, directionsOf, knownUnitAt } from "./cards.js";
import { CELL_SOFT, colourOf, darkTextOn, rangeOf, scaleOf } from "./colors.js";
import { captionOf, downloadFigure, slug } from "./export.js";
import { MATH, PLAIN, el, esc, fmt, setText, showToken } from "./format.js";
import { CONFIG, FONT, INK, axis, chartColours, cssColour, hasPlotly, loadPlotly, onColourScheme, placeTip, plotlyReady, timeExtent } from "./plotting.js";

/** Height of one gate's strip in the curves chart (px). */
const STRIP = 46;
/** Margins of the curves chart (px). */
const MARGIN = { l: 64, r: 14, t: 8, b: 30 };
/** Least time between two redraws of the curves while steps stream in (ms; a redraw costs ~25 ms at 1,000 steps). */
const CHART_EVERY_MS = 250;

export class Inspector {
  /** els: {title, curves, curveTools, gate (select), text, preds, predsBox} */
  constructor(els, state, hooks = {}) {
    this.els = els;
    this.state = state;
    this.hooks = hooks;
    this.spans = [];
    this.current = null;
    this._frame = 0;
    this._lastChart = -Infinity;
    this._chartDrawn = false;
    this._chartKey = "";
    this._width = 0;
    this.cursor = el("div", { class: "in-cursor" });
    this.hover = el("div", { class: "in-hover" }); // the step under the pointer
    this.lines = el("canvas", { class: "in-lines", "aria-hidden": "true" }); // the curves (the frame is plotly's)
    this.heldBands = el("div", { class: "in-held-bands" }); // the steps held by hand (hold.js), a band each
    this.curvesArea = el("div", { class: "in-area", "data-testid": "curves-area" }, this.lines, this.heldBands, this.hover, this.cursor);
    this.plot = el("div", { class: "in-plot" });
    this.tip = el("div", { class: "hm-tip in-tip", role: "tooltip", "data-testid": "curves-readout", hidden: true });
    els.curves.append(this.plot, this.curvesArea);
    document.body.append(this.tip); // position: fixed against the window, not the panel's layer (main.css)
    /** The current character's outline (the box's child; a rebuild that empties the box puts it back). */
    this.mark = el("div", { class: "in-text-mark", "aria-hidden": "true" });
    // the characters reflow when the box's width changes: the outline follows
    if (typeof ResizeObserver === "function") new ResizeObserver(() => this._placeMark()).observe(els.text);
    this.textA = -1; // the first step the coloured text holds, and the window it was built for
    this.textKey = "";
    this.curvesArea.addEventListener("mousemove", (ev) => this._readout(ev));
    this.curvesArea.addEventListener("mouseleave", () => {
      this.tip.hidden = true;
      this.hover.style.display = "none";
    });
    this.curvesArea.addEventListener("click", (ev) => {
      const t = this._stepAt(ev);
      if (t !== null) state.setT(t);
    });
    /** Which step's prediction counts, for a head whose answer is its last step's. */
    this.predsNote = el("p", { class: "preds-note", "data-testid": "predictions-note", hidden: true });
    els.predsTitle.after(this.predsNote);
    // text alternatives: the curves are an image described in words; the coloured text's colour at t is said in a
    // visually hidden line (polite: a reader hears the value at the step it stops on)
    els.curves.setAttribute("role", "img");
    this.said = el("p", { class: "sr-only", id: "coloured-text-said", "aria-live": "polite", "data-testid": "coloured-text-said" });
    els.text.after(this.said);
    els.text.setAttribute("aria-describedby", "coloured-text-said");
    els.gate.addEventListener("change", () => {
      this._colourText();
      this._describe();
    });
    els.text.addEventListener("click", (ev) => {
      const t = ev.target?.dataset?.t;
      if (t !== undefined) state.setT(Number(t));
    });
    for (const [format, btn] of Object.entries(els.curveTools)) btn.addEventListener("click", () => this._export(format));
    state.subscribe((changed) => this._onChange(changed));
    new ResizeObserver(() => {
      const w = els.curves.clientWidth;
      if (w && w !== this._width) {
        this._width = w;
        this._chartKey = "";
        this._scheduleChart();
      }
    }).observe(els.curves);
    // the system's scheme changed: the frame and the curves again, in chartColours().line
    onColourScheme(() => {
      this._chartKey = this._layoutKey = "";
      this._scheduleChart();
    });
  }

  _onChange(changed) {
    if (changed.has("model")) this._build();
    if (changed.has("trace") || changed.has("window")) this._rebuildText();
    if (["focus", "trace", "unit", "layer", "model", "window"].some((k) => changed.has(k))) {
      this._scheduleChart();
      this._colourText();
    }
    if (changed.has("held") && this._domains) this._drawHeld();
    if (["t", "trace", "model", "window"].some((k) => changed.has(k))) {
      this._moveCursor();
      this._markCurrent();
      this._showPredictions();
    }
    if (["unit", "layer", "model"].some((k) => changed.has(k))) this._showTitle();
    if (["t", "trace", "focus", "unit", "layer", "model"].some((k) => changed.has(k))) this._describe();
  }

  /** The curves and the coloured text in words at step t: the selected unit's exact values (the server's lines). */
  _describe() {
    const s = this.state;
    const lines = s.currentLines();
    const T = s.T;
    const tok = T ? `'${showToken(s.trace.tokens[s.t])}'` : "";
    const gates = (s.card?.gates || []).filter((g) => lines?.[g]);
    const values = gates.map((g) => `${PLAIN[g] || g} ${fmt(lines[g][s.t], 3)}`).join(", ");
    const curves = !T ? "No steps yet." : !lines ? `Unit ${s.unit}'s values are on their way.` : `At t = ${s.t} (${tok}): ${values}.`;
    const label = `Curves of unit ${s.unit}'s gates over ${T} steps, layer ${s.layer}. ${curves}`;
    if (this.els.curves.getAttribute("aria-label") !== label) this.els.curves.setAttribute("aria-label", label);
    const gate = this.els.gate.value;
    const v = lines?.[gate]?.[s.t];
    const range = this._textRange ? `, on a colour scale from ${fmt(this._textRange[0])} to ${fmt(this._textRange[1])}` : "";
    const said = v === undefined ? "" : `At t = ${s.t}, token ${tok}: unit ${s.unit}'s ${PLAIN[gate] || gate} is ${fmt(v, 3)}${range}.`;
    setText(this.said, said);
  }

  _build() {
    const card = this.state.card;
    const { gate, predsBox } = this.els;
    gate.replaceChildren(...card.gates.map((g) => el("option", { value: g, text: PLAIN[g] || g })));
    gate.value = defaultTextGate(card);
    this.els.text.replaceChildren();
    this.spans = [];
    this.current = null;
    this.textKey = "";
    predsBox.hidden = true;
    if (hasPlotly()) Plotly.purge(this.plot);
    this._chartDrawn = false;
    this._chartKey = "";
    this._showTitle();
  }

  _showTitle() {
    const s = this.state;
    const k = knownUnitAt(s.card, s.layer, s.unit);
    const layer = s.card.layers > 1 ? `, layer ${s.layer}` : "";
    const way = directionsOf(s.card).length > 1 ? ` (${directionOf(s.card, s.unit).direction})` : "";
    this.els.title.textContent = `Unit ${s.unit}${way}${layer} up close${k ? ` — known as “${k.name}”` : ""}`;
  }

  // ---- the coloured text

  /** The steps shown: [a, b) (the window of a long text, else all) and whether it is a window. */
  _shown() {
    const s = this.state;
    const windowed = s.T > s.windowSize;
    const a = windowed ? s.view.start : 0;
    return { a, b: windowed ? Math.min(s.T, s.view.stop) : s.T, windowed, R: windowed ? s.windowSize : timeExtent(s.T) };
  }

  _rebuildText() {
    const s = this.state;
    const { a, b: T, windowed } = this._shown();
    const box = this.els.text;
    const key = windowed ? `${a}|${s.windowSize}` : "all";
    if (key !== this.textKey) {
      // another window: its characters replace the others
      box.replaceChildren();
      this.spans = [];
      this.current = null;
      this.textKey = key;
    }
    this.textA = a;
    const from = a + Math.min(Math.max(0, s.trace.from - a), this.spans.length);
    // drop spans (and their line breaks) from `from` on
    for (let t = a + this.spans.length - 1; t >= from; t--) {
      const span = this.spans[t - a];
      if (span.nextSibling && span.nextSibling.nodeType === Node.TEXT_NODE) span.nextSibling.remove();
      span.remove();
    }
    this.spans.length = from - a;
    if (this.current && Number(this.current.dataset.t) >= from) this.current = null;
    const frag = document.createDocumentFragment();
    const tokens = s.trace.tokens;
    const unknown = new Set(s.trace.unknown);
    // words are written apart, and a line's end-of-line token ends the line; pieces and characters are their text
    const words = s.card?.tokenizer === "word";
    const eol = words ? s.card.tokenizer_options?.eol : undefined;
    const series = s.card?.input === "vectors"; // a step shows as its values (the server's display), written apart
    if (this.els.textTitle) {
      const what = series ? "The series, coloured by this unit" : "The text, coloured by this unit";
      this.els.textTitle.textContent = windowed ? `${what} (steps ${a + 1}–${T} of ${s.T}: the window)` : what;
    }
    for (let t = from; t < T; t++) {
      const tok = tokens[t];
      const span = document.createElement("span");
      span.dataset.t = String(t);
      span.textContent = tok.replace(/\n/g, "↵").replace(/\t/g, "⇥");
      if (unknown.has(t)) {
        span.className = "unk";
        span.title = "Not in the model's vocabulary: read as its unknown token";
      }
      frag.append(span);
      const breaks = "\n".repeat(tok === eol ? 1 : (tok.match(/\n/g) || []).length);
      const after = breaks || (words || series ? " " : "");
      if (after) frag.append(after); // one text node after the span, removed with it
      this.spans.push(span);
    }
    box.append(frag);
    box.classList.toggle("is-empty", T === 0);
  }

  _colourText() {
    const s = this.state;
    const gate = this.els.gate.value;
    const lines = s.currentLines();
    const vals = lines?.[gate];
    this.els.text.classList.toggle("is-pending", !vals);
    if (!vals) return;
    // C is unbounded: the text uses this unit's own max |C| (stated in the legend), so its pattern
    // shows even when another unit's C is far larger
    let cellMax = 1;
    if (scaleOf(gate) === "cell") {
      cellMax = 0;
      for (const v of vals) cellMax = Math.max(cellMax, Math.abs(v));
      cellMax = cellMax || 1;
    }
    this._legend(gate, cellMax);
    const a = this.textA;
    const n = Math.min(this.spans.length, vals.length - a);
    for (let k = 0; k < n; k++) {
      const v = vals[a + k];
      const span = this.spans[k];
      const bg = colourOf(gate, v, cellMax);
      if (span._bg === bg) continue; // unchanged: no style write
      span._bg = bg;
      span.style.background = bg;
      span.style.color = darkTextOn(gate, v, cellMax) ? "#111" : "#fff";
    }
    this._markCurrent();
  }

  _legend(gate, cellMax) {
    const { legend } = this.els;
    const [lo, hi] = rangeOf(scaleOf(gate), cellMax);
    this._textRange = [lo, hi];
    const cell = scaleOf(gate) === "cell";
    const A = Math.asinh(cellMax / CELL_SOFT);
    const valueAt = (x) => (cell ? CELL_SOFT * Math.sinh((2 * x - 1) * A) : lo + (hi - lo) * x); // evenly along the ramp
    const stops = Array.from({ length: 9 }, (_, k) => colourOf(gate, valueAt(k / 8), cellMax));
    legend.replaceChildren(
      el("span", { class: "lo", text: fmt(lo) }),
      el("span", { class: "ramp", style: `background: linear-gradient(90deg, ${stops.join(", ")})` }),
      el("span", { class: "hi", text: fmt(hi) }),
    );
    legend.title = scaleOf(gate) === "cell" ? `C is unbounded: the colours span ±${fmt(cellMax)}, this unit's largest |C| in the text, on an asinh scale (linear within ±1, logarithmic beyond)` : "";
  }

  _markCurrent() {
    const span = this.spans[this.state.t - this.textA] || null;
    if (this.current === span && this.mark.isConnected) return;
    this.current?.classList.remove("is-current"); // the class says which (tests, saved state); the mark draws it
    span?.classList.add("is-current");
    this.current = span;
    if (this.mark.parentNode !== this.els.text) this.els.text.append(this.mark); // a rebuild emptied the box
    this._placeMark();
  }

  /** Move the current character's outline onto it and keep it in view inside the box (never scrolls the page), in
   *  the next frame, once a frame: the outline is a layer of its own moved by transform, so a step repaints none of
   *  the characters (an outline on the span repainted the whole box, ~0.8 ms a step at 1,000 characters). */
  _placeMark() {
    if (this._scrollFrame) return;
    this._scrollFrame = requestAnimationFrame(() => {
      this._scrollFrame = 0;
      const box = this.els.text;
      const cur = this.current;
      this.mark.style.display = cur ? "block" : "none";
      if (!cur) return;
      // read once a frame, in the frame's own layout (the handlers' writes are done)
      const [left, top, width, height] = [cur.offsetLeft, cur.offsetTop, cur.offsetWidth, cur.offsetHeight];
      this.mark.style.transform = `translate(${left}px, ${top}px)`;
      this.mark.style.width = `${width}px`;
      this.mark.style.height = `${height}px`;
      if (box.scrollHeight <= box.clientHeight) return;
      const bottom = top + height;
      if (top < box.scrollTop) box.scrollTop = top - 8;
      else if (bottom > box.scrollTop + box.clientHeight) box.scrollTop = bottom - box.clientHeight + 8;
    });
  }

  // ---- predictions

  _showPredictions() {
    const s = this.state;
    const { preds, predsBox } = this.els;
    const tr = s.trace;
    const kind = tr.output?.kind ?? (tr.probs ? "next" : null);
    const shown = kind === "values" ? tr.values : tr.probs;
    if (!kind || !shown || !s.T) {
      predsBox.hidden = true;
      preds.replaceChildren();
      return;
    }
    predsBox.hidden = false;
    predsBox.dataset.kind = kind;
    this.predsNote.hidden = true;
    predsBox.classList.remove("is-answer");
    if (kind === "next") this._showNext();
    else this._showOutputs(kind);
  }

  /** A language model: the top-k next tokens after t, the one that actually comes next outlined. A scrub step
   *  rewrites only the texts, widths and classes that changed in the k rows it keeps (no rebuild per t). */
  _showNext() {
    const s = this.state;
    const { preds, predsTitle } = this.els;
    const probs = s.trace.probs;
    const t = s.t;
    const next = s.trace.tokens[t + 1];
    let head = this._nextHead;
    if (!head || head.title !== predsTitle || predsTitle.firstChild !== head.first) {
      const tok = el("span", { class: "tok" });
      const tail = document.createTextNode("");
      predsTitle.replaceChildren("After ", tok, tail);
      head = this._nextHead = { title: predsTitle, first: predsTitle.firstChild, tok, tail };
    }
    setText(head.tok, showToken(s.trace.tokens[t]));
    setText(head.tail, ` (t = ${t}) the model expects`);
    const row = probs.p.row(t);
    const toks = probs.tokens[t];
    let rows = this._nextRows;
    if (!rows || rows.length !== toks.length || preds.children.length !== toks.length || preds.firstChild !== rows[0]?.li) {
      rows = this._nextRows = toks.map(() => {
        const tok = el("span", { class: "tok" });
        const fill = el("span", {});
        const p = el("span", { class: "p" });
        return { li: el("li", {}, tok, el("span", { class: "bar" }, fill), p), tok, fill, p, hit: null };
      });
      preds.replaceChildren(...rows.map((r) => r.li));
    }
    toks.forEach((tok, k) => {
      const r = rows[k];
      const pct = `${(row[k] * 100).toFixed(1)}%`;
      const hit = next !== undefined && tok === next;
      setText(r.tok, showToken(tok));
      setText(r.p, pct);
      if (r.fill.style.width !== pct) r.fill.style.width = pct;
      if (hit !== r.hit) {
        r.hit = hit;
        r.li.className = hit ? "is-next" : "";
        r.li.title = hit ? "the character that actually comes next" : "";
      }
    });
  }

  /** A classifier (every class's probability, by name) or a regressor (the values at t, as numbers); with
   * head_at "last", only the last step's answer counts: it is marked, earlier steps say what they are. */
  _showOutputs(kind) {
    const s = this.state;
    const { preds, predsTitle } = this.els;
    const tr = s.trace;
    const t = s.t;
    const last = tr.output?.at === "last";
    const isAnswer = last && t === s.T - 1;
    const what = kind === "classes" ? "class probabilities" : "predicted values";
    const tok = el("span", { class: "tok", text: showToken(tr.tokens[t]) });
    predsTitle.replaceChildren(
      ...(isAnswer ? ["The answer, after ", tok, ` (t = ${t}, the last step)`] : ["After ", tok, ` (t = ${t}): ${what}`]),
    );
    this.predsNote.hidden = !last;
    this.predsNote.textContent = isAnswer
      ? "Only the last step's prediction counts: this is the model's answer."
      : `Only the last step's prediction counts (t = ${s.T - 1}); this is what the model would answer if the input ended here.`;
    this.els.predsBox.classList.toggle("is-answer", isAnswer);
    const items = kind === "classes" ? this._classItems(t) : this._valueItems(t);
    preds.replaceChildren(...items);
  }

  _classItems(t) {
    const probs = this.state.trace.probs;
    const row = probs.p.row(t);
    return probs.tokens[t].map((name, k) => {
      const p = row[k];
      return el(
        "li",
        { class: k === 0 ? "is-top" : "", title: k === 0 ? "the likeliest class at this step" : "" },
        el("span", { class: "tok is-label", text: name }),
        el("span", { class: "bar" }, el("span", { style: `width:${(p * 100).toFixed(1)}%` })),
        el("span", { class: "p", text: `${(p * 100).toFixed(1)}%` }),
      );
    });
  }

  _valueItems(t) {
    const tr = this.state.trace;
    const labels = tr.output?.labels || [];
    const row = tr.values.row(t);
    const target = tr.targets ? tr.targets.row(t) : null;
    return Array.from(row, (v, k) =>
      el(
        "li",
        { class: "is-value" },
        el("span", { class: "tok is-label", text: labels[k] ?? `y${k}` }),
        el("span", { class: "v", text: fmt(v, 4) }),
        el("span", { class: "p", text: target && !Number.isNaN(target[k]) ? `target ${fmt(target[k], 4)}` : "" }),
      ),
    );
  }

  // ---- the curves

  _scheduleChart() {
    if (this._frame) return;
    // the curves are off the typing path: after the heatmaps' frame, and at most every CHART_EVERY_MS
    const wait = Math.max(0, this._lastChart + CHART_EVERY_MS - performance.now());
    this._frame = setTimeout(() => {
      requestAnimationFrame(() =>
        setTimeout(() => {
          this._frame = 0;
          this._lastChart = performance.now();
          this._drawChart();
        }, 0),
      );
    }, wait);
  }

  _figure(lines, T) {
    const s = this.state;
    const gates = s.card.gates;
    const n = gates.length;
    const width = this.els.curves.clientWidth || 600;
    const height = MARGIN.t + MARGIN.b + n * STRIP;
    const { a, b, R } = this._shown();
    const x = Array.from({ length: Math.max(0, b - a) }, (_, k) => a + k);
    const few = b - a < 80;
    const layout = {
      width,
      height,
      margin: { ...MARGIN, autoexpand: false },
      font: FONT,
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      showlegend: false,
      xaxis: axis({ range: [a - 0.5, a + R - 0.5], anchor: `y${n > 1 ? n : ""}`, nticks: 8, showticklabels: T > 0 }),
    };
    const keyParts = [width, a, R, few];
    const data = [];
    const strips = []; // each gate's values, y range and domain (the canvas draws them as plotly would)
    const gap = 0.22 / n;
    gates.forEach((g, k) => {
      const yname = k === 0 ? "yaxis" : `yaxis${k + 1}`;
      const scale = scaleOf(g);
      const vals = (lines[g] || []).slice(a, b);
      let range = scale === "gate" ? [-0.05, 1.05] : [-1.1, 1.1];
      let ticks = scale === "gate" ? [0, 1] : [-1, 0, 1];
      if (scale === "cell") {
        let m = 0;
        for (const v of vals) m = Math.max(m, Math.abs(v));
        m = Math.max(m, 0.1);
        const r = Number(m.toPrecision(2)); // within 5% of m: the range moves (a redrawn frame) only when r does
        range = [-r * 1.16, r * 1.16];
        ticks = [-r, 0, r];
        keyParts.push(r);
      }
      const top = 1 - k / n;
      const domain = [Math.max(0, top - 1 / n + gap / 2), top - gap / 2];
      strips.push({ vals, range, domain });
      layout[yname] = axis({
        domain,
        range,
        tickmode: "array",
        tickvals: ticks,
        ticktext: ticks.map((v) => fmt(v, Math.abs(v) >= 10 || Number.isInteger(v) ? 0 : 1)),
        zeroline: scale !== "gate",
        zerolinecolor: cssColour("--line-strong", "#d0d5da"),
        title: { text: MATH[g], standoff: 6, font: { size: 12 } },
        showline: true,
      });
      data.push({
        type: "scatter",
        mode: few ? "lines+markers" : "lines",
        x,
        y: vals,
        xaxis: "x",
        yaxis: k === 0 ? "y" : `y${k + 1}`,
        line: { color: chartColours().line, width: 1.3 },
        marker: { size: 3, color: chartColours().line },
        hoverinfo: "skip",
      });
    });
    return { data, layout, layoutKey: keyParts.join("|"), strips, x };
  }

  _drawChart() {
    const s = this.state;
    const lines = s.currentLines();
    if (!s.card) return;
    if (!hasPlotly()) {
      plotlyReady().then(() => this._scheduleChart(), () => {});
      return;
    }
    const T = s.T;
    if (!lines && T) return; // the exact lines are on their way
    const key = `${s.model}|${s.layer}|${s.unit}|${T}|${s.trace.version}|${this._width}|${Boolean(lines)}|${s.view.start}|${s.windowSize}`;
    if (key === this._chartKey) return;
    this._chartKey = key;
    const fig = this._figure(lines || {}, T);
    // plotly draws the frame only (its traces hold no points): when the axes change
    const frame = fig.data.map((d) => ({ ...d, x: [], y: [] }));
    if (!this._chartDrawn) {
      Plotly.newPlot(this.plot, frame, fig.layout, CONFIG);
      this._chartDrawn = true;
    } else if (fig.layoutKey !== this._layoutKey) {
      Plotly.react(this.plot, frame, fig.layout, CONFIG);
    }
    this._layoutKey = fig.layoutKey;
    this._figSize = { width: fig.layout.width, height: fig.layout.height };
    this._moveCursor();
    this._drawLines(fig);
    this._domains = fig.strips.map((st) => st.domain);
    this._drawHeld();
  }

  /** A band over the steps where the selected unit's gate was held by hand, on that gate's strip (the server's
   *  word: state.heldRuns); its name says what was held. */
  _drawHeld() {
    const s = this.state;
    const box = this.heldBands;
    box.replaceChildren();
    const size = this._figSize;
    if (!size || !s.T) return;
    const w = size.width - MARGIN.l - MARGIN.r;
    const h = size.height - MARGIN.t - MARGIN.b;
    const { a, R } = this._shown();
    const cw = w / R;
    for (const run of s.heldRuns) {
      const k = s.card.gates.indexOf(run.gate);
      if (run.layer !== s.layer || !run.units.includes(s.unit) || k < 0) continue;
      const from = Math.max(run.from, a);
      const to = Math.min(run.to, s.T, a + R);
      if (to <= from) continue;
      const [d0, d1] = this._domains[k];
      const words = `unit ${s.unit}'s ${PLAIN[run.gate] || run.gate} held by hand from t = ${run.from} to t = ${run.to - 1}`;
      const band = el("div", { class: "in-held", role: "img", "aria-label": words, title: words, "data-testid": "curves-held" });
      Object.assign(band.style, { left: `${(from - a) * cw}px`, width: `${Math.max(2, (to - from) * cw)}px`, top: `${h * (1 - d1)}px`, height: `${h * (d1 - d0)}px` });
      box.append(band);
    }
  }

  /** Draw the curves on the canvas over plotly's plot area: strip k's values on its y range and domain. */
  _drawLines(fig) {
    const w = fig.layout.width - MARGIN.l - MARGIN.r;
    const h = fig.layout.height - MARGIN.t - MARGIN.b;
    const dpr = window.devicePixelRatio || 1;
    const c = this.lines;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
      Object.assign(c.style, { width: `${w}px`, height: `${h}px` });
    }
    const ctx = c.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const { a, R } = this._shown();
    const cw = w / R;
    const few = fig.x.length < 80;
    ctx.strokeStyle = ctx.fillStyle = chartColours().line;
    ctx.lineWidth = 1.3;
    ctx.lineJoin = "round";
    for (const { vals, range, domain } of fig.strips) {
      const Y = (v) => h * (1 - (domain[0] + ((v - range[0]) / (range[1] - range[0])) * (domain[1] - domain[0])));
      ctx.beginPath();
      let open = false;
      for (let k = 0; k < vals.length; k++) {
        const v = vals[k];
        if (!Number.isFinite(v)) {
          open = false;
          continue;
        }
        const X = (fig.x[k] - a + 0.5) * cw;
        if (open) ctx.lineTo(X, Y(v));
        else ctx.moveTo(X, Y(v));
        open = true;
      }
      ctx.stroke();
      if (few) for (let k = 0; k < vals.length; k++) ctx.fillRect((fig.x[k] - a + 0.5) * cw - 1.5, Y(vals[k]) - 1.5, 3, 3);
    }
  }

  _moveCursor() {
    const s = this.state;
    const size = this._figSize;
    if (!size || !s.T) {
      this.cursor.style.display = "none";
      return;
    }
    const w = size.width - MARGIN.l - MARGIN.r;
    const h = size.height - MARGIN.t - MARGIN.b;
    Object.assign(this.curvesArea.style, { left: `${MARGIN.l}px`, top: `${MARGIN.t}px`, width: `${w}px`, height: `${h}px` });
    const { a, R } = this._shown();
    const cw = w / R;
    this.cursor.style.display = s.t >= a && s.t < a + R ? "block" : "none"; // t outside the window: no cursor
    this.cursor.style.transform = `translateX(${(s.t - a) * cw + cw / 2 - 1}px)`;
  }

  /** The step under a pointer event on the curves, or null. */
  _stepAt(ev) {
    const s = this.state;
    if (!s.T || !this._figSize) return null;
    const box = this.curvesArea.getBoundingClientRect();
    const x = (ev.clientX - box.left) / box.width;
    if (x < 0 || x >= 1) return null;
    const { a, R } = this._shown();
    const t = a + Math.floor(x * R);
    return t < s.T ? t : null;
  }

  /** The readout under the pointer: t, its token, and each gate's value at t. */
  _readout(ev) {
    const s = this.state;
    const t = this._stepAt(ev);
    const lines = s.currentLines();
    if (t === null || !lines) {
      this.tip.hidden = true;
      this.hover.style.display = "none";
      return;
    }
    const rows = s.card.gates.map((g) => `<b>${MATH[g] || g}</b> = <span class="num">${fmt(lines[g]?.[t], 3)}</span>`);
    this.tip.innerHTML = `t = ${t} <span class="tok">${esc(showToken(s.trace.tokens[t]))}</span> · unit ${s.unit}<br>${rows.join("<br>")}`;
    this.tip.dataset.t = String(t);
    this.tip.hidden = false;
    const { a, R } = this._shown();
    const cw = this.curvesArea.clientWidth / R;
    this.hover.style.display = "block";
    this.hover.style.transform = `translateX(${(t - a) * cw}px)`;
    this.hover.style.width = `${Math.max(cw, 1)}px`;
    placeTip(this.tip, ev);
  }

  async _export(format) {
    const s = this.state;
    const lines = s.currentLines();
    if (!lines || !s.T) return;
    const fig = this._figure(lines, s.T);
    fig.layout.shapes = [{ type: "line", xref: "x", yref: "paper", x0: s.t, x1: s.t, y0: 0, y1: 1, line: { color: INK, width: 1.2 } }];
    fig.layout.title = { text: `${s.model} · layer ${s.layer} · unit ${s.unit}`, x: 0, xref: "paper", xanchor: "left", font: { size: 13 } };
    fig.layout.margin = { ...fig.layout.margin, t: 30 };
    fig.layout.height += 22;
    try {
      await loadPlotly();
      await downloadFigure(fig, format, slug(`gatescope-${s.model}-layer${s.layer}-unit${s.unit}-t${s.t}`), captionOf(s));
    } catch (e) {
      this.hooks.onError?.(`The curves could not be saved: ${e.message}`);
    }
  }
}

