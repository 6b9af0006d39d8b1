/**
 * Run b beside run a: the same views of the second run of a comparison (compare.js), on one timeline. Run b has a
 * State of its own (no URL of its own: the page's state keeps the comparison, vs= ...), traced over a live socket of
 * its own (LiveSync, as run a is), with a second diagram and a second grid of heatmaps drawing it. One scrubber
 * drives both: a's t is b's t (clamped to b's steps); b's unit is state.selectedB() (a's unit's partner when paired,
 * a's unit for one architecture, else b's own, vs_unit=). A click in b's views selects for the page: its t is a's
 * t, its unit a's (through the pairing) or b's own. b's diagram opens the hold menu (hold.js) on b's state: what it
 * holds travels on b's socket, b's diagram marks it, and the page's state keeps the list for the URL (hold_b=).
 *
 * Change costs: a scrub step sets b's t (b's views take their cheap path); a new pair (state "compared") opens b.
 *
 * A saved page of a comparison (saved.js) runs the same: there b's trace comes from the file (hooks.sync: api.js's
 * SavedSync on b's embedded reply) instead of a socket.
 */

import { LiveSync } from "./api.js";
import { Diagram } from "./diagram.js";
import { fmt } from "./format.js";
import { Heatmaps } from "./heatmaps.js";
import { HoldMenu } from "./hold.js";
import { State } from "./state.js";

export class SideRun {
  /** nodes: {row (the cell row: data-side="on" while b is shown), diagramBox, diagram, heatmapsBox, heatmaps,
   *  title (b's name and unit over its diagram), heatTitle, titleA (a's name over its diagram), heatTitleA};
   *  hooks.sync(b): what brings b's trace to its state (default: a live socket of its own). */
  constructor(nodes, state, hooks = {}) {
    this.nodes = nodes;
    this.state = state;
    /** Run b's own state (side.js only; tests read it as window.gatescope.side.b). */
    this.b = new State({ url: false });
    this._sync = hooks.sync ? hooks.sync(this.b) : new LiveSync(this.b, { onError: (message) => this._refused(message) });
    this._connected = false;
    this._echo = false; // true while this module sets b's selection from a's (b's notifications are not the user's)
    // b's units, held in run b (a live page's: a saved one runs nothing)
    this.menu = hooks.sync ? null : new HoldMenu(document.body, this.b, "side-hold");
    this.diagram = new Diagram({ root: nodes.diagram, name: "side-diagram" }, this.b, { onPick: (part, g) => this.menu?.open(part, g) });
    this.heatmaps = new Heatmaps(nodes.heatmaps, this.b, { name: "b-heatmap" });
    state.subscribe((changed) => this._onA(changed));
    this.b.subscribe((changed) => this._onB(changed));
  }

  get shown() {
    return this.nodes.row.dataset.side === "on";
  }

  _onA(changed) {
    const s = this.state;
    if (changed.has("cards")) this.b.setCards(s.listed);
    if (changed.has("compared") || (changed.has("compare") && !s.compare)) this._open();
    if (!this.shown) return;
    if (changed.has("unit") || changed.has("compare")) this._selectUnit();
    if (changed.has("t")) this._follow();
    if (changed.has("interventions_b")) this._holdB();
  }

  /** b holds what the page's state says run b holds (a link's hold_b=, the list emptied with a new model b). */
  _holdB() {
    const want = this.state.interventionsB;
    if (JSON.stringify(want) === JSON.stringify(this.b.interventions)) return;
    this._echo = true;
    try {
      this.b.setInterventions(want);
    } finally {
      this._echo = false;
    }
  }

  /** b's socket refused an edit: a hold it cannot run is dropped (b then shows its plain run), and either is said. */
  _refused(message) {
    if (this.b.interventions.length && /\binterventions?\b/.test(message)) {
      this.state.setInterventionsB([]); // and through _holdB, b's own list
      this._say(`Nothing is held in run b: ${message.replace(/\.?$/, ".")} It shows its plain run.`);
      return;
    }
    this._say(`Cannot trace run b: ${message}`);
  }

  /** Show run b as the server's answer names it, or hide it. */
  _open() {
    const st = this.state.compared?.state?.b;
    if (!st) {
      this.nodes.row.dataset.side = "off";
      for (const box of this._boxes()) box.hidden = true;
      return;
    }
    if (!this._connected) {
      this._connected = true;
      this._sync.connect?.(); // a saved page's b has nothing to connect to
    }
    const b = this.b;
    const pick = this.state.selectedB();
    this._echo = true;
    try {
      if (b.model !== st.model) b.setModel(st.model, { text: st.text, layer: st.layer, unit: pick.unit, t: this.state.t });
      else {
        b.setText(st.text);
        b.select({ layer: st.layer, unit: pick.unit });
        if (!b.T) b.pendingT = this.state.t;
      }
    } finally {
      this._echo = false;
    }
    this._holdB(); // after setModel, which empties b's list
    this.nodes.row.dataset.side = "on";
    for (const box of this._boxes()) box.hidden = false;
    this._follow();
    this._titles();
  }

  /** What shows only while b does: its views and the runs' names over a's. */
  _boxes() {
    const n = this.nodes;
    return [n.diagramBox, n.heatmapsBox, n.titleA, n.heatTitleA];
  }

  /** b's unit: selectedB() (the partner, the same unit, or b's own). */
  _selectUnit() {
    const pick = this.state.selectedB();
    if (!pick) return;
    this._echo = true;
    try {
      this.b.select({ unit: pick.unit });
    } finally {
      this._echo = false;
    }
    this._titles();
  }

  /** b's t is a's t, clamped to b's steps. */
  _follow() {
    const b = this.b;
    this._echo = true;
    try {
      if (b.T) b.setT(Math.min(this.state.t, b.T - 1));
      else b.pendingT = this.state.t;
    } finally {
      this._echo = false;
    }
    this.nodes.diagramBox.dataset.t = String(b.t);
  }

  _onB(changed) {
    if (!this.shown) return;
    if (changed.has("trace")) this._follow(); // b's steps arrived: its t is a's again (not its last step)
    if (changed.has("unit") || changed.has("trace") || changed.has("model")) this._titles();
    if (this._echo) return;
    if (changed.has("interventions") && !changed.has("model")) this.state.setInterventionsB(this.b.interventions); // b's menu
    // the reader clicked in b's views: select for the page
    if (changed.has("t") && !changed.has("trace")) this.state.setT(this.b.t); // not b's own follow of its steps
    if (changed.has("unit")) this._pickB(this.b.unit);
  }

  /** The reader chose unit u of b: a's partner of it (paired), a's unit u (one architecture), or b's own (vs_unit). */
  _pickB(u) {
    const s = this.state;
    const pick = s.selectedB();
    if (!pick) return;
    if (pick.from === "paired") {
      const pair = s.compared.matching.pairs.find((p) => p.b === u);
      if (pair) s.select({ unit: pair.a });
    } else if (pick.from === "same") s.select({ unit: u });
    else s.setCompare({ ...s.compare, unit: u });
  }

  _titles() {
    const s = this.state;
    const st = s.compared?.state;
    if (!st) return;
    const pick = s.selectedB();
    const b = this.b;
    const run = st.b.model === st.a.model ? `${st.b.model} on the other text` : st.b.model;
    const why =
      pick.from === "paired"
        ? `a's unit ${s.unit}'s partner, r = ${fmt(pick.r, 3)}`
        : pick.from === "same"
          ? "the same unit as a"
          : `its own unit: unit k of ${st.b.model} is not unit k of ${st.a.model}`;
    const steps = b.T && b.T !== s.T ? `, ${b.T} steps` : "";
    this.nodes.title.textContent = `b: ${run}, unit ${b.unit} (${why})${steps}`;
    this.nodes.title.dataset.unit = String(b.unit);
    this.nodes.title.dataset.from = pick.from;
    this.nodes.heatTitle.textContent = `b: ${run}`;
    this.nodes.heatTitleA.textContent = `a: ${s.model}${st.b.model === st.a.model ? " on this text" : ""}`;
    this.nodes.titleA.textContent = `a: ${s.model}${st.b.model === st.a.model ? " on this text" : ""}, unit ${s.unit}`;
  }

  _say(text) {
    this.nodes.title.textContent = text;
  }
}
