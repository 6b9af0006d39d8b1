/**
 * Presentation mode, for a lecture hall: large type and only the diagram, one heatmap (the gate the page looks at:
 * C, or h for a GRU and a plain RNN), the predictions and the scrubber (present.css). A toggle and the URL's
 * present=1 turn it on; PageDown / PageUp (what a presentation clicker sends) step t, as ← → do; Esc leaves.
 */

export class Presenter {
  /** els: {toggle (button)} */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    els.toggle.addEventListener("click", () => state.setPresent(!state.present));
    document.addEventListener("keydown", (ev) => this._key(ev));
    state.subscribe((changed) => {
      if (changed.has("present") || changed.has("gate") || changed.has("model")) this._render();
    });
    this._render();
  }

  _render() {
    const { present, gate } = this.state;
    const body = document.body;
    body.classList.toggle("is-present", present);
    body.dataset.presentGate = gate || "";
    const { toggle } = this.els;
    toggle.setAttribute("aria-pressed", String(present));
    toggle.textContent = present ? "Leave presentation" : "Present";
  }

  _key(ev) {
    const s = this.state;
    if (!s.present || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = ev.target?.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || ev.target?.isContentEditable) return;
    if (tag === "INPUT" && ev.target.type !== "range") return;
    if (ev.key === "PageDown" || ev.key === "PageUp") {
      ev.preventDefault();
      s.setT(s.t + (ev.key === "PageDown" ? 1 : -1));
    } else if (ev.key === "Escape") {
      s.setPresent(false);
    }
  }
}
