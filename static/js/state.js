/**
 * What the page shows: the selection (model, text, layer, t, unit) and the trace store (tokens, per
 * layer per gate the decoded (T × H) values, the top-k predictions, the selected unit's exact lines).
 * Views subscribe and get told what changed:
 *
 *   subscribe((changed, state) => ...)   changed: Set of
 *     "cards"   the model list changed (state.listed: every card; state.cards: those the page can drive:
 *               text models that are available)
 *     "model"   the card changed (views rebuild their structure; the store was emptied)
 *     "card"    the same model's card was replaced (its known units changed): state.card is the new one
 *     "trace"   steps arrived or were cut (state.trace.from: the first step that changed)
 *     "focus"   the selected unit's exact lines arrived (state.focus)
 *     "index"   the server's word on the model's corpus index changed (state.index: {state, progress, info})
 *     "layer" | "unit" | "t" | "text"   a selection changed
 *     "gate"    the gate the unit's dashboard (and the other corpus views) look at changed
 *     "order"   the heatmaps' row order changed (state.order: "index" | "probe" | "similar"; state.orderRows:
 *               the unit drawn in each row, a permutation of the layer's units, or null for index order)
 *     "span"    the span of steps a pattern match starts from changed (state.span: {start, stop} or null)
 *     "compare" the run set beside this one changed (state.compare: {model, text, match, unit} or null)
 *     "compared" the server's answer on the pair arrived or was dropped (state.compared: POST /api/compare's, or null)
 *     "interventions" the units held (state.interventions: the list POST /api/trace takes; [] none)
 *     "held"    the server's word on what the trace shown holds changed (state.heldRuns: its "intervened", each
 *               {layer, units, gate, op, value, from, to}, [] for a plain run); comes with the "trace" it belongs to
 *     "present" presentation mode turned on or off (state.present)
 *     "chapter" the guided story's chapter changed (state.chapter: its id, or null: no tour)
 *     "highlight" what the story lights in the diagram and the heatmaps changed (state.highlight: a gate, or null)
 *
 * The selection round-trips through the URL hash (#model=code&layer=0&t=12&unit=118&gate=c&text=...&order=similar;
 * a probe's order keeps its rows: order=probe&rows=118.3.54, the rest of the units following by id; a comparison:
 * vs=recall-rnn (another model), vs_text=... (another text), vs_match=1 (units paired by activity), vs_unit=3 (b's own
 * unit, where b's units are not a's); present=1: presentation mode; the story's chapter: chapter=forget-holds (a link
 * with no model opens on the chapter's own state); a long text's window: win=1200.400 (the steps [1200, 1600) shown;
 * the size is the zoom); the units held: hold=[{"layer":0,"unit":118,"gate":"c","op":"set","value":0,"from":12}]
 * (run b's, beside it: hold_b=[...], the same form)
 * (JSON, URI-encoded).
 * Nothing here computes a gate: values come from the server; this module only stores and indexes.
 */

import { defaultTextGate, defaultUnit, gateWidth, unitsOf } from "./cards.js";

/** Steps the heatmaps and curves show at once at most, at first (a longer text shows a window of them). */
export const WINDOW_STEPS = 400;
/** The fewest steps a window can be zoomed in to. */
export const MIN_WINDOW = 20;

/** Rows a Series reserves when it first grows. */
const FIRST_CAPACITY = 256;

/** A growable (T × width) float32 table, row-major. Cutting keeps the rows after T in the buffer. */
export class Series {
  constructor(width) {
    this.width = width;
    this.T = 0;
    this.data = new Float32Array(FIRST_CAPACITY * width);
  }

  /** Steps the buffer can hold without growing. */
  get capacity() {
    return this.data.length / this.width;
  }

  /** Keep the first k steps. */
  cut(k) {
    this.T = Math.min(this.T, k);
  }

  /** Append `rows` steps of values (a Float32Array of rows × width). A decoded reply whose buffer has room for the
   *  steps kept in front of it (frames.js decodeReply's `room`) becomes the buffer: only those steps are copied. */
  append(values, rows) {
    const kept = this.T * this.width;
    const need = kept + rows * this.width;
    const whole = values.buffer;
    const roomy = values.byteOffset === kept * 4 && whole.byteLength >= need * 4 && whole !== this.data.buffer;
    if (roomy && (kept > 0 || whole.byteLength > this.data.byteLength)) {
      // a long paste or a first long reply: its buffer is the page's own; copying 20,000 steps of six gates in
      // here was ~60 MB (and a major GC) in the task that applies the reply
      const data = new Float32Array(whole);
      if (kept) data.set(this.data.subarray(0, kept));
      this.data = data;
      this.T += rows;
      return;
    }
    if (need > this.data.length) {
      let cap = this.capacity;
      while (cap * this.width < need) cap *= 2;
      const grown = new Float32Array(cap * this.width);
      grown.set(this.data.subarray(0, this.T * this.width));
      this.data = grown;
    }
    this.data.set(values.subarray(0, rows * this.width), this.T * this.width);
    this.T += rows;
  }

  /** Step t's values (a view, no copy). */
  row(t) {
    return this.data.subarray(t * this.width, (t + 1) * this.width);
  }
}

/** The steps the page holds: tokens, gates per layer, predictions; cut and appended by edit replies. */
export class TraceStore {
  constructor(card = null) {
    this.card = card;
    this.reset();
  }

  reset() {
    const card = this.card;
    this.version = 0; // bumped by every update
    this.T = 0;
    this.held = 0; // steps of the server's cached trace still in the buffers (>= T)
    this.from = 0; // first step changed by the latest update
    this.tokens = [];
    this.unknown = [];
    this.layers = [];
    this.probs = null;
    this.inputs = null; // a vector model's series as the server read it: {names, rows: T arrays of D}
    this.output = card?.output ?? null; // what the head predicts: {kind, at, size, labels}, or null
    this.values = null; // a values head's outputs: a Series of K per step (row(t)), or null
    this.targets = null; // what they should be where known (NaN: not known), or null
    this._cellRowMax = [];
    if (!card) return;
    for (let l = 0; l < card.layers; l++) {
      const gates = {};
      for (const g of card.gates) gates[g] = new Series(gateWidth(card, g));
      this.layers.push(gates);
      this._cellRowMax.push(new Float32Array(FIRST_CAPACITY));
    }
  }

  /** Hide every step but keep the buffers: the server's cache still holds them (empty text). */
  hide() {
    this.T = 0;
    this.from = 0;
  }

  /** Whether a reply that starts at step k can be applied (we hold its first k steps). */
  canApply(k) {
    return k <= this.held;
  }

  /** Apply an edit reply (decoded): cut to reply.from, append its steps. */
  apply(reply) {
    const k = reply.from;
    const n = reply.length - k;
    // the tokens as the server writes them for reading: subword pieces come with their text (display)
    this.tokens.length = k;
    for (const tok of reply.display || reply.tokens) this.tokens.push(tok);
    this.unknown = reply.unknown || [];
    reply.layers.forEach((layer, l) => {
      for (const [g, arr] of Object.entries(layer)) {
        const s = this.layers[l]?.[g];
        if (!s) continue;
        s.cut(k);
        s.append(arr.data, n);
      }
      if (layer.c) this._cellMaxFrom(l, k);
    });
    if (reply.probs) {
      if (!this.probs) this.probs = { k: reply.probs.k, tokens: [], p: new Series(reply.probs.p.cols) };
      this.probs.tokens.length = k;
      for (const row of reply.probs.display || reply.probs.tokens) this.probs.tokens.push(row);
      this.probs.p.cut(k);
      this.probs.p.append(reply.probs.p.data, n);
    } else {
      this.probs = null;
    }
    if (reply.inputs) {
      if (!this.inputs || k === 0) this.inputs = { names: reply.inputs.names, rows: [] };
      this.inputs.names = reply.inputs.names;
      this.inputs.rows.length = k;
      for (const row of reply.inputs.rows) this.inputs.rows.push(row);
    } else {
      this.inputs = null;
    }
    if (reply.output !== undefined) this.output = reply.output;
    this.values = this._rows(this.values, reply.values, k, n);
    // a forecaster's targets may start before k (a row appended makes the step before it known)
    const since = reply.targets_from ?? k;
    this.targets = this._rows(this.targets, reply.targets, since, reply.targets ? reply.targets.rows : n);
    this.T = this.held = reply.length;
    this.from = k;
    this.version += 1;
  }

  /** A Series of per-step rows cut to k and grown by the reply's n rows, or null when the reply has none. */
  _rows(series, rows, k, n) {
    if (!rows) return null;
    const s = series && series.width === rows.cols ? series : new Series(rows.cols);
    s.cut(k);
    s.append(rows.data, n);
    return s;
  }

  _cellMaxFrom(l, k) {
    const c = this.layers[l].c;
    let m = this._cellRowMax[l];
    if (m.length < c.T) {
      const grown = new Float32Array(c.capacity);
      grown.set(m);
      m = this._cellRowMax[l] = grown;
    }
    const H = c.width;
    for (let t = k; t < c.T; t++) {
      const row = c.row(t);
      let best = 0;
      for (let u = 0; u < H; u++) {
        const a = Math.abs(row[u]);
        if (a > best) best = a;
      }
      m[t] = best;
    }
  }

  /** max |C| over the shown steps of a layer (0 without C): stated beside the cell colour scale. */
  cellPeak(layer) {
    const m = this._cellRowMax[layer];
    let best = 0;
    if (m) for (let t = 0; t < this.T; t++) if (m[t] > best) best = m[t];
    return best;
  }

  /** The half-range of the cell colour scale: max |C| over the shown steps of a layer (0 without C). */
  cellMax(layer) {
    const key = `${layer}:${this.T}:${this.version}`;
    if (this._cellMaxKey !== key) [this._cellMaxKey, this._cellMaxValue] = [key, this.cellPeak(layer)];
    return this._cellMaxValue;
  }

  /** The shown steps whose token is not in the vocabulary (read as its unknown entry). */
  unknownShown() {
    return this.unknown.filter((t) => t < this.T);
  }
}

function _clamp(x, lo, hi) {
  return Math.max(lo, Math.min(hi, x));
}

/** The whole page's state. */
export class State {
  /** opts.url: whether the selection round-trips through the URL hash (false: a second run's state, side.js). */
  constructor({ url = true } = {}) {
    this._url = url;
    /** Every card the server lists (vector models too: the picker shows them, disabled). */
    this.listed = [];
    /** The cards the page can drive (text models; every card when there is none). */
    this.cards = [];
    this.card = null;
    this.model = null;
    this.text = "";
    this.layer = 0;
    this.t = 0;
    this.unit = 0;
    /** The gate the corpus views (the unit's dashboard) look at: C, or h for gru/rnn, unless chosen. */
    this.gate = "c";
    /** Whether t follows the last step as steps arrive (true until the reader scrubs back). */
    this.follow = true;
    /** A step asked for before any step arrived (a shared link's t), applied with the first reply. */
    this.pendingT = null;
    this.trace = new TraceStore();
    /** The selected unit's exact lines: {layer, unit, lines: {name: number[T]}} or null. */
    this.focus = null;
    /** Why the server cannot trace the text typed, or null (main.js keeps it from the live socket's replies). */
    this.textError = null;
    /** The model's corpus index as the server last said (GET /api/models/{id}/index), or null. */
    this.index = null;
    /** How the heatmaps order their rows: "index" (by unit id), "probe" (a probe's ranking), "similar". */
    this.order = "index";
    /** The unit drawn in each heatmap row (a permutation of 0..units−1), or null: by id. */
    this.orderRows = null;
    /** Where orderRows came from, in words (the server's "method"), or "". */
    this.orderNote = "";
    /** The run set beside this one (compare.js): {model: another model's id or null (this one), text: another
     *  text or null (this one), match: pair the units by activity, unit: b's own unit or null}, or null. */
    this.compare = null;
    /** The server's answer on the pair (POST /api/compare: state {a, b}, matching ...), or null (compare.js). */
    this.compared = null;
    /** What the intervention panel holds (intervene.js): a list as POST /api/trace's "interventions" takes it. */
    this.interventions = [];
    /** What run b (side.js) holds: the list its socket carries, as "interventions" is a's; [] none. */
    this.interventionsB = [];
    /** What the trace shown holds, as the server ran it (its reply's "intervened": from/to resolved); [] plain. */
    this.heldRuns = [];
    /** The span [start, stop) of steps a pattern match starts from, or null. */
    this.span = null;
    /** Presentation mode (present.js): large type, the diagram, one heatmap, the predictions and the scrubber. */
    this.present = false;
    /** The guided story's chapter shown (its id), or null: no tour (story.js). */
    this.chapter = null;
    /** A chapter a link named without a model: story.js sets its state once the chapters arrive. */
    this.chapterPending = false;
    /** The gate the story lights in the diagram and the heatmaps, or null. */
    this.highlight = null;
    /** Steps a window shows at most (the zoom) and the window shown: steps [view.start, view.stop). */
    this.windowSize = WINDOW_STEPS;
    this.view = { start: 0, stop: 0 };
    /** Where a link's (or a saved page's) window starts, until the text's steps arrive to place it; or null. */
    this.pendingWindow = null;
    this._subs = [];
    this._hashTimer = null;
    this._hashFirst = null; // when the oldest change not yet in the hash was made (performance.now())
    /** The hash this page last wrote or opened: one that differs was put there by the reader (or a link). */
    this._hashSeen = typeof location === "object" ? location.hash : "";
  }

  /** Call fn(changed: Set, state) after every change. Returns an unsubscribe function. */
  subscribe(fn) {
    this._subs.push(fn);
    return () => (this._subs = this._subs.filter((f) => f !== fn));
  }

  _notify(changed) {
    if (changed.size === 0) return;
    if (changed.has("t") || changed.has("trace") || changed.has("model")) {
      this._fitWindow(this.pendingWindow ?? this.view.start, changed);
      if (this.trace.T > this.windowSize) this.pendingWindow = null; // placed (a short text keeps it for its steps)
    }
    for (const fn of this._subs) fn(changed, this);
    if (["model", "text", "layer", "unit", "t", "gate", "order", "compare", "present", "chapter", "interventions", "interventions_b", "window"].some((k) => changed.has(k))) this._scheduleHash();
  }

  /** Move the window to start at `start`, `size` steps wide (clamped to the text; null keeps the zoom). t stays. */
  setWindow(start, size = null) {
    const changed = new Set();
    if (size !== null) this.windowSize = _clamp(Math.round(size), MIN_WINDOW, Math.max(MIN_WINDOW, this.trace.T));
    this._fitWindow(Math.round(start), changed, false);
    this._notify(changed);
  }

  /** Place the window at `start` (with `follow`, moved so that t is inside it); adds "window" when it moved.
   *  A text longer than windowSize shows windowSize steps (past the end: the steps still to come, so typing at
   *  the end moves the window once every quarter window); a shorter one shows all of them. */
  _fitWindow(start, changed, follow = true) {
    const T = this.trace.T;
    const size = this.windowSize;
    let view = { start: 0, stop: T };
    if (T > size) {
      let hi = T - size;
      const q = Math.floor(size / 4);
      if (follow && this.t < start) start = this.t - (size - 1 - q); // t a quarter in from the right edge
      else if (follow && this.t >= start + size) {
        // scrubbing on: t a quarter in from the left edge; at the last step, a quarter from the right (room for
        // the steps typed next)
        start = this.follow && this.t === T - 1 ? this.t - (size - 1 - q) : this.t - q;
        hi = Math.max(hi, Math.min(start, this.t));
      } else if (follow) hi = Math.max(hi, Math.min(start, this.t)); // the window past the end stays while t is in it
      start = _clamp(start, 0, hi);
      view = { start, stop: start + size };
    }
    if (view.start === this.view.start && view.stop === this.view.stop) return;
    this.view = view;
    changed.add("window");
  }

  /** Steps shown. */
  get T() {
    return this.trace.T;
  }

  /** The card of a model id. */
  cardOf(id) {
    return this.cards.find((c) => c.id === id) || null;
  }

  /** Take the server's model list (GET /api/models). */
  setCards(cards) {
    this.listed = cards;
    this.cards = cards.filter((c) => c.available !== false); // text and series models alike
    this._notify(new Set(["cards"]));
  }

  /** Replace one model's card (a unit was saved into it, say): notifies "card" (the selection and the trace stay). */
  updateCard(card) {
    const swap = (list) => list.map((c) => (c.id === card.id ? card : c));
    this.listed = swap(this.listed);
    this.cards = swap(this.cards);
    if (this.card?.id !== card.id) return;
    this.card = card;
    this._notify(new Set(["card"]));
  }

  /**
   * Switch model. `keep`: the text typed stays (the caller asked the server whether the new model reads it:
   * picker.js, POST /api/models/{id}/reads); otherwise, or when the text is one of the old model's examples, the new
   * model's first example replaces it. The unit shown is the new card's most telling one.
   */
  choose(id, { keep = false } = {}) {
    const old = this.card;
    const card = this.cardOf(id);
    if (!card) throw new Error(`Unknown model '${id}'`);
    const text = this.text && keep && !old?.examples.includes(this.text) ? this.text : card.examples[0] || "";
    this.setModel(id, { ...defaultUnit(card), text });
  }

  /**
   * Show what a URL hash names (model, layer, t, unit, gate, text); a model the server lacks gives way to
   * `fallback` (then the first card). Returns the hash's model id when it was not found, else null.
   */
  openHash(hash, fallback) {
    this._hashSeen = hash;
    const h = parseHash(hash);
    const cards = this.cards;
    this.chapter = h.chapter ?? null;
    this.chapterPending = !!h.chapter && !h.model;
    const card = cards.find((c) => c.id === h.model) || cards.find((c) => c.id === fallback) || cards[0];
    const start = defaultUnit(card);
    this.setModel(card.id, {
      unit: h.unit ?? start.unit,
      layer: h.layer ?? start.layer,
      text: h.text ?? card.examples[0] ?? "",
      t: h.t ?? null,
      gate: h.gate ?? null,
      win: h.win ?? null,
      interventions: card.id === h.model ? h.hold ?? [] : [], // another model's units are not this one's
    });
    if (h.order === "similar") this.setOrder("similar", null);
    else if (h.order === "probe" && h.rows) this.setOrder("probe", h.rows);
    const vs = h.vs || h.vs_text !== undefined;
    this.setCompare(vs ? { model: h.vs ?? null, text: h.vs_text ?? null, match: h.vs_match, unit: h.vs_unit } : null);
    this.setInterventionsB(vs ? h.hold_b ?? [] : []);
    this.setPresent(h.present);
    this._notify(new Set(["chapter"]));
    return h.model && h.model !== card.id ? h.model : null;
  }

  /** Select a model: empties the store; layer and unit are clamped to the new size; a gate it lacks gives way to
   *  its default (C, or h for gru/rnn). */
  setModel(id, { unit = null, layer = null, text = null, t = null, gate = null, win = null, interventions = [] } = {}) {
    const card = this.cardOf(id);
    if (!card) throw new Error(`Unknown model '${id}'`);
    this.card = card;
    this.model = id;
    this.trace = new TraceStore(card);
    this.focus = null;
    this.index = null; // the new model's is asked for (indexer.js)
    this.tracedText = "";
    this.layer = _clamp(layer ?? this.layer, 0, card.layers - 1);
    this.unit = _clamp(unit ?? this.unit, 0, unitsOf(card) - 1);
    const g = gate ?? this.gate;
    this.gate = card.gates.includes(g) ? g : defaultTextGate(card);
    this.t = 0;
    this.follow = true;
    this.pendingT = t;
    if (win) this.windowSize = Math.max(MIN_WINDOW, Math.round(win.size));
    this.pendingWindow = win ? Math.max(0, Math.round(win.start)) : null;
    if (text !== null) this.text = text;
    // a probe's ranking was of the old model; "similar" is asked again for the new one
    if (this.order === "probe") this.order = "index";
    this.orderRows = null;
    this.orderNote = "";
    this.span = null;
    this.interventions = interventions; // the old model's units are not this one's (a link names the new one's)
    this.heldRuns = [];
    this._notify(new Set(["model", "text", "trace", "layer", "unit", "t", "focus", "gate", "order", "span", "interventions", "held"]));
  }

  /** Change the text (the views learn of it; the data arrives later with "trace"). With `follow`, t goes
   *  to the last step as the steps arrive (an example chosen), wherever it was. */
  setText(text, { follow = false } = {}) {
    if (follow) this.follow = true;
    if (text === this.text) return;
    this.text = text;
    this.pendingWindow = null; // another text: the window follows t
    const changed = new Set(["text"]);
    if (!text && this.trace.T > 0) {
      this.trace.hide();
      this.tracedText = "";
      this.t = 0;
      this.follow = true;
      changed.add("trace").add("t");
    }
    this._notify(changed);
  }

  /** The server's word on the model's index ({model, state, progress, info, error}); notifies "index". */
  setIndex(status) {
    if (status && status.model !== this.model) return; // a late answer about the model shown before
    this.index = status;
    this._notify(new Set(["index"]));
  }

  /** Choose the gate the corpus views look at (one of the card's gates). */
  setGate(gate) {
    if (!this.card?.gates.includes(gate)) throw new Error(`Unknown gate '${gate}'`);
    if (gate === this.gate) return;
    this.gate = gate;
    this._notify(new Set(["gate"]));
  }

  /**
   * Open a text at a step with a unit selected (a corpus context): layer and unit now, t once the text's
   * steps arrive (the same text: at once). One notification, so the edit sent asks for the unit's lines.
   */
  openContext({ text, t = 0, unit = this.unit, layer = this.layer }) {
    if (text === this.text && this.trace.T) {
      this.select({ layer, unit, t });
      return;
    }
    const card = this.card;
    if (!card) return;
    const changed = new Set(["text"]);
    const u = _clamp(Math.round(unit), 0, unitsOf(card) - 1);
    const l = _clamp(Math.round(layer), 0, card.layers - 1);
    if (u !== this.unit) changed.add("unit");
    if (l !== this.layer) changed.add("layer");
    [this.unit, this.layer, this.text] = [u, l, text];
    this.pendingWindow = null; // another text: the window follows t
    this.pendingT = Math.max(0, Math.round(t));
    this.follow = false;
    this.span = null; // a span of the text shown before
    changed.add("span");
    this._notify(changed);
  }

  /** Select a step (clamped to the steps shown). */
  setT(t) {
    const T = this.trace.T;
    const next = T ? _clamp(Math.round(t), 0, T - 1) : 0;
    this.follow = T > 0 && next === T - 1;
    if (next === this.t) return;
    this.t = next;
    this._notify(new Set(["t"]));
  }

  /** Select a unit and/or a layer (and optionally a step): one notification. */
  select({ unit = this.unit, layer = this.layer, t = null } = {}) {
    const card = this.card;
    if (!card) return;
    const changed = new Set();
    const u = _clamp(Math.round(unit), 0, unitsOf(card) - 1);
    const l = _clamp(Math.round(layer), 0, card.layers - 1);
    if (u !== this.unit) {
      this.unit = u;
      changed.add("unit");
    }
    if (l !== this.layer) {
      this.layer = l;
      changed.add("layer");
    }
    if (t !== null && this.trace.T) {
      const next = _clamp(Math.round(t), 0, this.trace.T - 1);
      this.follow = next === this.trace.T - 1;
      if (next !== this.t) {
        this.t = next;
        changed.add("t");
      }
    }
    this._notify(changed);
  }

  /**
   * Order the heatmaps' rows: "index" (by unit id), "probe" (a probe's ranking: `rows` its units, best first) or
   * "similar" (`rows` the server's clustering order; null while it is on its way). `rows` may list only some units:
   * the others follow by id. `note` says where the order came from.
   */
  setOrder(order, rows = null, note = "") {
    if (!["index", "probe", "similar"].includes(order)) throw new Error(`Unknown order '${order}'`);
    this.order = order;
    this.orderRows = order === "index" || !rows ? null : completeRows(rows, unitsOf(this.card));
    this.orderNote = order === "index" ? "" : note;
    this._notify(new Set(["order"]));
  }

  /** The row each unit is drawn in (the inverse of orderRows), or null for index order. */
  rowOf() {
    const rows = this.orderRows;
    if (!rows) return null;
    if (this._rowOfKey !== rows) {
      this._rowOfKey = rows;
      this._rowOf = new Int32Array(rows.length);
      rows.forEach((u, r) => (this._rowOf[u] = r));
    }
    return this._rowOf;
  }

  /**
   * Open a story chapter ({id, model, text, layer, unit, t, highlight}): the page takes its state (t once the
   * text's steps arrive) and lights its gate; null leaves the tour, the page staying as it is.
   */
  setChapter(ch) {
    this.chapterPending = false;
    if (!ch) {
      if (this.chapter === null && this.highlight === null) return;
      [this.chapter, this.highlight] = [null, null];
      this._notify(new Set(["chapter", "highlight"]));
      return;
    }
    [this.chapter, this.highlight] = [ch.id, ch.highlight ?? null];
    if (ch.model !== this.model) this.setModel(ch.model, { unit: ch.unit, layer: ch.layer, text: ch.text, t: ch.t });
    else this.openContext({ text: ch.text, t: ch.t, unit: ch.unit, layer: ch.layer });
    this._notify(new Set(["chapter", "highlight"]));
  }

  /** Light a gate in the diagram and the heatmaps (the story's; null: none): notifies "highlight". */
  setHighlight(gate) {
    if (gate === this.highlight) return;
    this.highlight = gate;
    this._notify(new Set(["highlight"]));
  }

  /** Hold these units (a list of interventions as the server takes them; [] none): notifies "interventions". */
  setInterventions(list) {
    this.interventions = list;
    this._notify(new Set(["interventions"]));
  }

  /** Hold these units of run b (side.js: its menu, its socket; [] none): notifies "interventions_b". */
  setInterventionsB(list) {
    if (JSON.stringify(list) === JSON.stringify(this.interventionsB)) return;
    this.interventionsB = list;
    this._notify(new Set(["interventions_b"]));
  }

  /** Hold the selected unit's `gate` from step `from` (the diagram's menu, the unit panel): op "set" (at `value`),
   *  "scale" (by `value`), "zero", or "patch" (its values in a plain run of `source`); `to` the exclusive end
   *  (omitted: the end). Adds it to the interventions. */
  holdHere({ gate, op = "set", value = 0, source = null, from = this.t, to = null }) {
    this.setInterventions([...this.interventions, this.holdOf({ gate, op, value, source, from, to })]);
  }

  /** The intervention holdHere adds (as POST /api/trace takes it), without adding it. */
  holdOf({ gate, op = "set", value = 0, source = null, from = this.t, to = null }) {
    if (!this.card?.gates.includes(gate)) throw new Error(`Unknown gate '${gate}'`);
    if (!["set", "scale", "zero", "patch"].includes(op)) throw new Error(`Unknown op '${op}'`);
    const iv = { layer: this.layer, unit: this.unit, gate, op, from: Math.max(0, Math.round(from)) };
    if (op === "set" || op === "scale") iv.value = Number(value);
    if (op === "patch") iv.source_text = String(source ?? "");
    if (to !== null) iv.to = Math.round(to);
    return iv;
  }

  /** The runs of the trace shown that hold layer `layer` at step t: [{gate, units, op, value, from, to}]. */
  heldAt(layer, t) {
    return this.heldRuns.filter((r) => r.layer === layer && r.from <= t && t < r.to);
  }

  /** Turn presentation mode on or off; notifies "present". */
  setPresent(on) {
    if (!!on === this.present) return;
    this.present = !!on;
    this._notify(new Set(["present"]));
  }

  /** Set a run beside this one ({model, text, match, unit}: model null is this model, text null this text, unit
   *  null b's most telling unit), or null. */
  setCompare(c) {
    const other = c && (c.model || (c.text !== null && c.text !== undefined));
    const unit = Number.isInteger(c?.unit) && c.unit >= 0 ? c.unit : null;
    const next = other ? { model: c.model || null, text: c.text ?? null, match: !!c.match, unit } : null;
    if (JSON.stringify(next) === JSON.stringify(this.compare)) return;
    const sameB = next && this.compare && next.model === this.compare.model; // b's units are the same model's
    this.compare = next;
    this._notify(new Set(["compare"]));
    if (!sameB) this.setInterventionsB([]);
  }

  /** Keep the server's answer on the pair (POST /api/compare), or null; notifies "compared". */
  setCompared(data) {
    if (data === this.compared) return;
    this.compared = data;
    this._notify(new Set(["compared"]));
  }

  /**
   * Run b's selected unit, or null without an answer on the pair: {unit, from, r}. from "paired": the partner of
   * a's unit in the server's matching (r its correlation); "same": one architecture, a's unit itself; "own": b's own
   * (vs_unit, else the unit the server chose: b's most telling), since unit k of another model is not a's unit k.
   */
  selectedB() {
    const d = this.compared;
    if (!d?.state) return null;
    if (d.matching) {
      const pair = d.matching.pairs.find((p) => p.a === this.unit);
      if (pair) return { unit: pair.b, from: "paired", r: pair.r };
    }
    if (d.state.b.unit_from === "same") return { unit: this.unit, from: "same", r: null };
    return { unit: this.compare?.unit ?? d.state.b.unit, from: "own", r: null };
  }

  /** Select the span [start, stop) of steps a pattern match starts from (null clears it); clamped to the steps. */
  setSpan(span) {
    let next = null;
    if (span) {
      const T = this.trace.T;
      const a = _clamp(Math.round(Math.min(span.start, span.stop - 1)), 0, Math.max(0, T - 1));
      const b = _clamp(Math.round(Math.max(span.stop, span.start + 1)), a + 1, Math.max(1, T));
      next = { start: a, stop: b };
    }
    const same = (next && this.span && next.start === this.span.start && next.stop === this.span.stop) || next === this.span;
    if (same) return;
    this.span = next;
    this._notify(new Set(["span"]));
  }

  /** Apply a decoded edit reply. Returns false when it cannot be applied (we lack its first steps). */
  applyEdit(reply, text = null) {
    if (reply.model !== this.model) return true; // a reply for a model no longer shown
    if (!this.trace.canApply(reply.from)) return false;
    this.trace.apply(reply);
    if (text !== null) this.tracedText = text;
    const changed = new Set(["trace"]);
    const held = reply.intervened || [];
    if (JSON.stringify(held) !== JSON.stringify(this.heldRuns)) {
      this.heldRuns = held;
      changed.add("held");
    }
    const T = this.trace.T;
    let t;
    if (this.pendingT !== null) {
      t = _clamp(this.pendingT, 0, T - 1);
      this.pendingT = null;
    } else {
      t = this.follow ? T - 1 : _clamp(this.t, 0, T - 1);
    }
    if (t !== this.t) {
      this.t = t;
      changed.add("t");
    }
    this.follow = this.t === T - 1;
    if (reply.focus) {
      if (this._mergeFocus(reply.focus)) changed.add("focus");
    }
    this._notify(changed);
    return true;
  }

  /** Apply a focus reply (or an edit reply's focus part). Returns whether the lines are now current. */
  applyFocus(focus) {
    const ok = this._mergeFocus(focus);
    if (ok) this._notify(new Set(["focus"]));
    return ok;
  }

  _mergeFocus(f) {
    const T = this.trace.T;
    const held = this.focus;
    const same = held && held.layer === f.layer && held.unit === f.unit;
    let lines;
    if (f.from === 0) {
      lines = f.lines;
    } else if (same && held.length >= f.from) {
      lines = {};
      for (const [name, vals] of Object.entries(f.lines)) {
        const old = held.lines[name] || [];
        lines[name] = old.slice(0, f.from).concat(vals);
      }
    } else {
      return false; // lines of another unit: wait for the focus reply
    }
    const length = Object.values(lines)[0]?.length ?? 0;
    if (length !== T) return false; // stale (for another text)
    this.focus = { layer: f.layer, unit: f.unit, length, lines };
    return true;
  }

  /** The exact lines of the selected unit and layer, or null while they are on their way. */
  currentLines() {
    const f = this.focus;
    if (!f || f.layer !== this.layer || f.unit !== this.unit || f.length !== this.trace.T) return null;
    return f.lines;
  }

  // -------------------------------------------------------------------------------------------
  // The URL hash

  /** The selection as a hash string. */
  toHash() {
    const p = [
      `model=${encodeURIComponent(this.model ?? "")}`,
      `layer=${this.layer}`,
      `t=${this.t}`,
      `unit=${this.unit}`,
      `gate=${encodeURIComponent(this.gate)}`,
      `text=${encodeURIComponent(this.text)}`,
    ];
    if (this.compare?.model) p.push(`vs=${encodeURIComponent(this.compare.model)}`);
    if (this.compare && this.compare.text !== null) p.push(`vs_text=${encodeURIComponent(this.compare.text)}`);
    if (this.compare?.match) p.push("vs_match=1");
    if (this.compare && this.compare.unit !== null) p.push(`vs_unit=${this.compare.unit}`);
    if (this.present) p.push("present=1");
    // a long text's window (or a zoom): win=start.size
    if (this.trace.T > this.windowSize || this.windowSize !== WINDOW_STEPS) p.push(`win=${this.view.start}.${this.windowSize}`);
    if (this.interventions.length) p.push(`hold=${encodeURIComponent(JSON.stringify(this.interventions))}`);
    if (this.compare && this.interventionsB.length) p.push(`hold_b=${encodeURIComponent(JSON.stringify(this.interventionsB))}`);
    if (this.chapter) p.push(`chapter=${encodeURIComponent(this.chapter)}`);
    if (this.order === "similar") p.push("order=similar");
    else if (this.order === "probe" && this.orderRows) p.push("order=probe", `rows=${this.orderRows.slice(0, HASH_ROWS).join(".")}`);
    return "#" + p.join("&");
  }

  /** Write the URL hash once the selection has stood still for HASH_MS (and at least every HASH_MAX_MS while it keeps
   *  changing, as in play), the newest selection each time. replaceState with the text in the hash costs the main
   *  thread ~5-20 ms: written every 200 ms it landed between the frames of a scrub (the bench's p95); now a held
   *  arrow key writes it when the key is let go. Copy link writes it at once (writeHash). */
  _scheduleHash() {
    if (!this._url) return;
    const now = performance.now();
    this._hashFirst ??= now; // the oldest change not yet written
    clearTimeout(this._hashTimer);
    const wait = Math.max(0, Math.min(HASH_MS, this._hashFirst + HASH_MAX_MS - now));
    this._hashTimer = setTimeout(() => {
      this._hashTimer = null;
      this._hashFirst = null;
      // a hash someone else put there meanwhile (a link followed, the address bar edited) is the hashchange
      // handler's to open: writing the old selection over it would lose it
      if (location.hash !== this._hashSeen && location.hash !== this.toHash()) return;
      this.writeHash();
    }, wait);
  }

  /** Write the selection into the URL hash now (Copy link; the hashchange handler when it names this selection). */
  writeHash() {
    const hash = this.toHash();
    if (this._url && location.hash !== hash) history.replaceState(null, "", hash);
    this._hashSeen = location.hash;
  }
}

/** How long the selection stands still before the URL hash is written (ms). */
const HASH_MS = 200;
/** Longest a change waits for its hash while the selection keeps changing (ms): playing writes it this often. */
const HASH_MAX_MS = 2000;

/** Rows of a probe's order the URL keeps (its best units; the rest follow by id after a reload). */
const HASH_ROWS = 64;

/** `rows` (unit ids, best first; duplicates and ids outside 0..n−1 dropped) followed by every other unit by id. */
export function completeRows(rows, n) {
  const seen = new Uint8Array(n);
  const out = [];
  for (const u of rows) {
    if (Number.isInteger(u) && u >= 0 && u < n && !seen[u]) {
      seen[u] = 1;
      out.push(u);
    }
  }
  for (let u = 0; u < n; u++) if (!seen[u]) out.push(u);
  return out;
}

/** Parse a URL hash (#model=..&layer=..&t=..&unit=..&gate=..&text=..&order=..&rows=..&win=..) into {model, layer, t,
 *  unit, gate, text, order, rows, win: {start, size}}. */
export function parseHash(hash) {
  const out = {};
  const body = hash.startsWith("#") ? hash.slice(1) : hash;
  if (!body) return out;
  for (const part of body.split("&")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq);
    let value;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      continue;
    }
    if (key === "model" || key === "text" || key === "vs" || key === "vs_text") out[key] = value;
    else if (key === "vs_match") out.vs_match = value === "1";
    else if (key === "present") out.present = value === "1";
    else if (key === "order" && ["index", "probe", "similar"].includes(value)) out.order = value;
    else if (key === "rows" && /^\d+(\.\d+)*$/.test(value)) out.rows = value.split(".").map(Number);
    else if (["layer", "t", "unit", "vs_unit"].includes(key) && /^\d+$/.test(value)) out[key] = Number(value);
    else if (key === "gate" && /^[a-z_]{1,16}$/.test(value)) out.gate = value;
    else if (key === "chapter" && /^[a-z0-9-]{1,40}$/.test(value)) out.chapter = value;
    else if (key === "hold" || key === "hold_b") out[key] = parseHold(value);
    else if (key === "win" && /^\d{1,9}\.\d{1,9}$/.test(value)) {
      const [start, size] = value.split(".").map(Number);
      out.win = { start, size };
    }
  }
  return out;
}

/** Most interventions a link's hold= brings (the server's GATESCOPE_MAX_INTERVENTIONS default). */
const HASH_HOLDS = 64;

/** A hash's hold= value (a JSON list of interventions) as the list the server takes; anything else: none. The
 *  server checks each field (and says what is wrong with it); this only keeps the objects. */
function parseHold(value) {
  let list;
  try {
    list = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (!Array.isArray(list)) return undefined;
  return list.filter((iv) => iv && typeof iv === "object" && !Array.isArray(iv)).slice(0, HASH_HOLDS);
}
