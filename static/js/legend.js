/**
 * Legends where the eye is: short notes beside the diagram, the controls and the heatmaps saying what the
 * notation, the strips, the colour scales and the numbers mean. Each can be hidden (×) and shown again (?);
 * the choice is remembered in localStorage. The texts say what the page does, never a number about a model:
 * the numbers they explain (r, separation, ±m) are the ones the views show beside them.
 */

/** localStorage key of a legend's "hidden" flag. */
const KEY = (id) => `gatescope.legend.${id}`;

/** What each legend says (HTML; static text). */
export const LEGENDS = {
  diagram: `<b>colah's notation:</b> <span class="lg-box">yellow box</span> a learned layer (weights, then σ or tanh);
    <span class="lg-op">pink circle</span> a pointwise op; a line carries a vector (merging lines concatenate, a fork copies).
    On a line: the selected unit's value, and a strip <span class="lg-strip" aria-hidden="true"><i></i><i></i><i class="lg-tick"></i><i></i><i></i></span>
    of the whole vector at t, a square per unit, the selected one outlined. Colours: σ 0 <span class="lg-ramp lg-gate" aria-hidden="true"></span> 1 ·
    tanh −1 <span class="lg-ramp lg-signed" aria-hidden="true"></span> +1 · C the same ramp over ± its largest |C| in the text.
    <span class="lg-held">Amber</span>: a value held by hand (an intervention), here, on the cards (“→ held”), the curves and the
    heatmaps<span class="lg-live">; click a box or op (or Enter on it) to hold the selected unit there</span>.`,
  unit: `<b>A unit</b> is one of the cell's H numbers: each vector (f, i, C, h, …) holds one value per unit.
    <b>Known units</b>: <b>r</b> is the Pearson correlation of the unit's value with a feature over held-out data (±1: follows it
    exactly, 0: not at all); <b>separation</b> is the share of its variance after the distractors that lies between the remembered
    symbols (1: its value alone tells them apart).`,
  heatmaps: `Rows are units, columns are steps. σ 0 <span class="lg-ramp lg-gate" aria-hidden="true"></span> 1 · tanh −1
    <span class="lg-ramp lg-signed" aria-hidden="true"></span> +1 · C: <b>±m, asinh</b> in its title means the colours span ±m,
    the largest |C| in this text, linear within ±1 and logarithmic beyond. The box marks step t; the outlined band with
    end tabs, the selected unit: click a cell to select both<span class="lg-live">, shift-click to select the span from t to it</span>.
    Amber outlines: cells held by hand.`,
};

/** Put legend `id` (LEGENDS[id]) into host, with its × (hide) and ? (show again) buttons. Returns the element. */
export function mountLegend(host, id) {
  const html = LEGENDS[id];
  if (html === undefined) throw new Error(`Unknown legend '${id}'`);
  const box = document.createElement("aside");
  box.className = "legend-note";
  box.dataset.legend = id;
  box.dataset.testid = `legend-${id}`;
  const body = document.createElement("p");
  body.className = "legend-body";
  body.innerHTML = html;
  const hide = button("×", "Hide this legend", "legend-hide");
  const show = button("?", `Show the legend (${id === "unit" ? "what a unit is" : id === "heatmaps" ? "colour scales" : "notation"})`, "legend-show");
  const set = (hidden) => {
    box.classList.toggle("legend-hidden", hidden);
    body.hidden = hidden;
    hide.hidden = hidden;
    show.hidden = !hidden;
    try {
      if (hidden) localStorage.setItem(KEY(id), "hidden");
      else localStorage.removeItem(KEY(id));
    } catch {
      // storage refused (private mode): the choice lasts this visit
    }
  };
  hide.addEventListener("click", () => {
    set(true);
    show.focus();
  });
  show.addEventListener("click", () => {
    set(false);
    hide.focus();
  });
  // one line until asked: "more" opens the whole text (shown only while the line cuts it), "less" folds it again
  const more = button("more", "Show the whole legend", "legend-more");
  more.removeAttribute("aria-label"); // its name is its word ("more" / "less"), its state aria-expanded, its title the hint
  more.setAttribute("aria-expanded", "false");
  more.addEventListener("click", () => {
    const open = !box.classList.contains("legend-open");
    box.classList.toggle("legend-open", open);
    more.textContent = open ? "less" : "more";
    more.setAttribute("aria-expanded", String(open));
    fold();
  });
  const fold = () => {
    const cut = box.classList.contains("legend-open") || body.scrollWidth > body.clientWidth + 1;
    if (more.hidden === cut) more.hidden = !cut;
  };
  new ResizeObserver(fold).observe(body);
  box.append(body, more, hide, show);
  set(wasHidden(id));
  host.append(box);
  return box;
}

/** Whether the user hid legend `id` before (false when storage is refused). */
function wasHidden(id) {
  try {
    return localStorage.getItem(KEY(id)) === "hidden";
  } catch {
    return false;
  }
}

function button(text, label, cls) {
  const b = document.createElement("button");
  Object.assign(b, { type: "button", className: `mini ${cls}`, textContent: text, title: label });
  b.setAttribute("aria-label", label);
  return b;
}
