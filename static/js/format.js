/**
 * How the page writes tokens, numbers and gate names (shared by the views; no state, no math).
 */

/** Whitespace made visible in labels: space, newline, tab. */
const VISIBLE = { " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍" };

/** A token as a label: whitespace made visible, other control characters as \\uXXXX. */
export function showToken(tok) {
  if (tok === undefined || tok === null) return "";
  let out = "";
  for (const ch of tok) {
    if (VISIBLE[ch]) out += VISIBLE[ch];
    else if (ch < " " || ch === "\x7f") out += `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`;
    else out += ch;
  }
  return out;
}

/** A number for reading: `digits` decimals, a true minus sign (−). */
export function fmt(x, digits = 2) {
  if (x === undefined || x === null || Number.isNaN(x)) return "–";
  const a = Math.abs(x);
  const d = a >= 1000 ? 0 : a >= 100 ? 1 : digits;
  // below the last shown decimal, one significant digit (0.004, not 0.00): small is not zero
  const s = a > 0 && a < 10 ** -digits ? a.toPrecision(1) : a.toFixed(d);
  return x < 0 && Number(s) !== 0 ? `−${s}` : s;
}

/** Math names of the gate keys, as HTML (plotly titles and the page read the same markup). */
export const MATH = {
  f: "f<sub>t</sub>",
  i: "i<sub>t</sub>",
  c_tilde: "C̃<sub>t</sub>",
  c: "C<sub>t</sub>",
  o: "o<sub>t</sub>",
  h: "h<sub>t</sub>",
  z: "z<sub>t</sub>",
  r: "r<sub>t</sub>",
  h_tilde: "h̃<sub>t</sub>",
  h_prev: "h<sub>t−1</sub>",
  c_prev: "C<sub>t−1</sub>",
  tanh_c: "tanh(C<sub>t</sub>)",
  m: "m<sub>t</sub>",
  f_c_prev: "f<sub>t</sub>·C<sub>t−1</sub>",
  i_c_tilde: "i<sub>t</sub>·C̃<sub>t</sub>",
  r_h_prev: "r<sub>t</sub>·h<sub>t−1</sub>",
  one_minus_z: "1−z<sub>t</sub>",
  one_minus_z_h_prev: "(1−z<sub>t</sub>)·h<sub>t−1</sub>",
  z_h_tilde: "z<sub>t</sub>·h̃<sub>t</sub>",
};

/** Plain-text names of the gate keys (selects, file names, tooltips). */
export const PLAIN = {
  f: "f (forget gate)",
  i: "i (input gate)",
  c_tilde: "C̃ (candidate)",
  c: "C (cell state)",
  o: "o (output gate)",
  h: "h (hidden state)",
  z: "z (update gate)",
  r: "r (reset gate)",
  h_tilde: "h̃ (candidate)",
};

/** Short plain names (C̃, h̃, ...). */
export const SHORT = { f: "f", i: "i", c_tilde: "C̃", c: "C", o: "o", h: "h", z: "z", r: "r", h_tilde: "h̃" };

/** Escape text for innerHTML. */
export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

/** Create an element: el("div", {class: "x", "data-testid": "y"}, child, "text", ...). */
/** Set a node's text only when it changed, and in place when it holds one text node (its layout object stays: a
 *  scrub step re-lays the characters, it does not remove one text and lay out another). */
export function setText(node, text) {
  const only = node.firstChild;
  if (only && only === node.lastChild && only.nodeType === 3) {
    if (only.data !== text) only.data = text;
  } else if (node.textContent !== text) {
    node.textContent = text;
  }
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === "text") node.textContent = v;
    else if (k === "html") node.innerHTML = v;
    else if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}
