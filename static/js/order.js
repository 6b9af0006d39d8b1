/**
 * The heatmaps' row order, chosen beside them: by unit id, by similar activity (the server clusters the units'
 * correlations, GET /api/models/{id}/order over the model's index, or over this text while it has none), or by a
 * probe's ranking (the probe view sets it: state.setOrder("probe", units)). This view asks the server (api.js)
 * and sets state.order / state.orderRows; heatmaps.js draws the rows in that order. The order is in the URL
 * (order=similar is asked again after a reload).
 */

import { unitOrder } from "./api.js";
import { defaultTextGate } from "./cards.js";
import { SHORT } from "./format.js";

/** What each order reads as in the select. */
const LABEL = { index: "by unit id", similar: "by similar activity", probe: "by the probe's ranking" };

export class OrderControl {
  /** nodes: {select, note}. hooks.onError(message|null). */
  constructor(nodes, state, hooks = {}) {
    this.nodes = nodes;
    this.state = state;
    this.hooks = hooks;
    this._asking = null; // the AbortController of the request on its way
    this._asked = ""; // what it asks: model|layer
    for (const [value, text] of Object.entries(LABEL)) nodes.select.append(new Option(text, value));
    nodes.select.addEventListener("change", () => {
      const order = nodes.select.value;
      if (order === "probe" && !state.orderRows) return this._sync(); // only a probe can set its ranking
      state.setOrder(order, order === "probe" ? state.orderRows : null);
    });
    state.subscribe((changed) => this._onChange(changed));
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("layer") && s.order === "similar" && !changed.has("model")) s.setOrder("similar", null); // per layer
    if (changed.has("order") || changed.has("model")) {
      this._sync();
      if (s.order === "similar" && !s.orderRows) this._ask();
      if (s.order !== "similar") this._cancel();
    } else if ((changed.has("trace") || changed.has("index")) && s.order === "similar" && !s.orderRows && !this._asking) {
      this._ask(); // it waited for a text the server has read, or for the index
    }
  }

  /** The select and the note say what the rows show. */
  _sync() {
    const s = this.state;
    const { select, note } = this.nodes;
    select.value = s.order;
    select.querySelector('option[value="probe"]').disabled = s.order !== "probe";
    note.textContent = s.order === "similar" && !s.orderRows ? "clustering the units…" : s.orderNote;
  }

  _cancel() {
    this._asking?.abort();
    this._asking = null;
    this._asked = "";
  }

  async _ask() {
    const s = this.state;
    const card = s.card;
    if (!card) return;
    const key = `${s.model}|${s.layer}`;
    if (this._asked === key) return;
    if (!s.tracedText && s.index?.state !== "ready") return; // nothing to order by yet: a trace or the index will come
    this._cancel();
    const ctl = new AbortController();
    this._asking = ctl;
    this._asked = key;
    const gate = defaultTextGate(card); // the state: C, or h
    try {
      const out = await unitOrder(s.model, s.layer, gate, s.tracedText, ctl.signal);
      if (ctl.signal.aborted || s.order !== "similar" || `${s.model}|${s.layer}` !== key) return;
      const where = out.source === "index" ? `the index (${out.steps.toLocaleString("en")} steps)` : `this text (${out.steps} steps; the model has no index yet)`;
      s.setOrder("similar", out.order, `Rows: units whose ${SHORT[out.gate]} acts alike sit together, over ${where}.`);
      this.hooks.onError?.(null);
    } catch (e) {
      if (e.name === "AbortError") return;
      this.hooks.onError?.(`The units could not be ordered by similarity: ${e.message}`);
      if (s.order === "similar") s.setOrder("index");
    } finally {
      if (this._asking === ctl) {
        this._asking = null;
        this._asked = "";
      }
    }
  }
}
