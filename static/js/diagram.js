/**
 * The chain diagram: colah's "Understanding LSTM Networks" (2015) figure, drawn in SVG for the model's cell
 * type. Three modules in a row: step t open (every layer and op), t−1 and t+1 closed ("A" boxes with their
 * tokens). On the open module each line carries the selected unit's value at t, and each vector line a strip
 * of the whole vector. Grammar (colah's legend): yellow boxes are learned layers, pink circles pointwise ops,
 * a merge is concatenation, a fork (dot) is a copy; the cell state runs along the top.
 *
 * setModel(card) builds the SVG once per model; update(view) only rewrites text, attributes and fills.
 */
import { colourOf } from "./colors.js";

const NS = "http://www.w3.org/2000/svg";

/** Gap between the open module and a closed neighbour, in SVG units (the state lines cross it). */
const GAP = 24;
/** How far the state lines stick out of the outer side of each neighbour. */
const STUB = 14;
/** Narrowest and widest closed neighbour: it narrows with the page so the open module's text stays legible. */
const NEIGHBOUR_MIN = 46;
const NEIGHBOUR_MAX = 170;
/** Widest closed neighbour as a share of the open module's width (so the open one stays clearly larger). */
const NEIGHBOUR_SHARE = 0.4;
/** Largest on-screen pixels per SVG unit: a small figure (the RNN) on a wide page gets margins, not giant text. */
const MAX_SCALE = 1.1;
/** Radius of a pointwise-op circle; half-axes of the tanh and 1− ellipses. */
const OP_R = 11;
const ELL_RX = 19;
const ELL_RY = 11;
/** Width and height of a learned-layer box. */
const BOX_W = 44;
const BOX_H = 28;
/** Corner radius where a line turns. */
const TURN = 10;
/** Colour-strip thickness, its distance from its line, and its longest length. */
const STRIP_W = 6;
const STRIP_OFF = 4;
const STRIP_MAX = 110;
/** Distance from a vertical line to the near edge of its number (its strip sits in between). */
const NUM_OFF = STRIP_OFF + STRIP_W + 7;
/** Arrowhead length and half-width. */
const HEAD_L = 9;
const HEAD_W = 4.6;
/** Radius of the x_t and h_t circles; of a fork dot; corner radius of the open module and the neighbours. */
const IO_R = 14;
const DOT_R = 3.6;
const MODULE_RX = 16;
const NEIGHBOUR_RX = 12;
/** Half-length of the gap cut into a line where another passes over it. */
const CASING = 7;
/** Font size of the numbers (SVG units = CSS px at scale 1, as in diagram.css); used to centre them on a point. */
const NUM_FONT = 15;
/** Figure space: pads positive numbers to about the width of a minus sign so right-aligned labels stay still. */
const FIGSP = "\u2007";

/** How the token at a step is shown: quoted, with whitespace made visible. */
export function showToken(tok) {
  if (tok === undefined || tok === null) return "";
  const vis = String(tok).replace(/[ \n\t\r]/g, (ch) => ({ " ": "␣", "\n": "↵", "\t": "⇥", "\r": "␍" })[ch]);
  return `“${vis.length > 8 ? vis.slice(0, 7) + "…" : vis}”`;
}

/** A value as the diagram prints it: 3 decimals below 1, then 2, then 1; a true minus sign. */
export function formatValue(v) {
  const a = Math.abs(v);
  let s = a < 1 ? v.toFixed(3) : a < 100 ? v.toFixed(2) : v.toFixed(1);
  if (Number(s) === 0) s = s.replace("-", "");
  return s[0] === "-" ? "−" + s.slice(1) : s;
}

// ---------------------------------------------------------------------------------------------------------
// Geometry. Each cell type is a "spec": lines, boxes, ops, dots, numbers and strips in module coordinates
// (x = 0 at the open module's left edge, L = -GAP the left neighbour's right edge, R = w + GAP the right one's).

/** A line: a polyline with rounded turns; `key` is the lines key it carries (null for a concatenation). */
const line = (pts, key, parts, opt = {}) => ({ pts, key, parts, arrow: !!opt.arrow, over: opt.over || [] });
/** A number left/right of a vertical line, centred on y; or above a horizontal line, starting at x. */
const numLeft = (key, x, y, name, sub) => ({ key, x: x - NUM_OFF, y: y + NUM_FONT * 0.36, anchor: "end", name, sub });
const numRight = (key, x, y, name, sub) => ({ key, x: x + NUM_OFF, y: y + NUM_FONT * 0.36, anchor: "start", name, sub });
const numAbove = (key, x, y, name, sub) => ({ key, x, y: y - 6, anchor: "start", name, sub });
/** A strip right/left of a vertical line from y0 to y1, or below a horizontal line from x0 to x1 (centred, capped). */
function strip(key, dir, at, a0, a1) {
  const len = Math.min(a1 - a0, STRIP_MAX);
  const s0 = (a0 + a1 - len) / 2;
  if (dir === "below") return { key, x: s0, y: at + STRIP_OFF, w: len, h: STRIP_W, vertical: false };
  const x = dir === "right" ? at + STRIP_OFF : at - STRIP_OFF - STRIP_W;
  return { key, x, y: s0, w: STRIP_W, h: len, vertical: true };
}

/** LSTM, peephole LSTM and coupled-gate LSTM (colah's chain figure and its variants). */
function lstmSpec(cell) {
  const peep = cell === "peephole";
  const coupled = cell === "coupled";
  const w = 596;
  const L = -GAP;
  const R = w + GAP;
  /** Rows: module top, cell-state line, tanh op, × row, box top, h/x bus, module bottom, x_t and h_t circles. */
  const Y = { top: 88, c: 116, tanh: 156, mul: 208, box: 256, bus: 322, bottom: 346, xc: 392, hc: 24, pp: 295 };
  /** Columns: x_t rising, merge, f, i (coupled: the 1− op), C̃, o, tanh(C) and the h_t line going up. */
  const X = { x: 84, m: 96, f: 136, i: coupled ? 196 : 232, ct: 328, o: 424, tc: 516, up: 566, pf: 34, po: 376 };
  const boxBottom = Y.box + BOX_H;
  const gates = coupled ? ["f", "c_tilde", "o"] : ["f", "i", "c_tilde", "o"];
  const all = [...gates];
  const lines = [
    line([[L, Y.c], [X.f - OP_R, Y.c]], "c_prev", peep ? ["f_c_prev", "f", "i"] : ["f_c_prev"], { arrow: true }),
    line([[X.f, Y.box], [X.f, Y.c + OP_R]], "f", coupled ? ["f", "f_c_prev", "i"] : ["f", "f_c_prev"], { arrow: true }),
    line([[X.f + OP_R, Y.c], [X.ct - OP_R, Y.c]], "f_c_prev", ["f_c_prev", "c"], { arrow: true }),
    line([[X.ct, Y.box], [X.ct, Y.mul + OP_R]], "c_tilde", ["c_tilde", "i_c_tilde"], { arrow: true }),
    line([[X.ct, Y.mul - OP_R], [X.ct, Y.c + OP_R]], "i_c_tilde", ["i_c_tilde", "c"], { arrow: true }),
    line([[X.tc, Y.c], [X.tc, Y.tanh - ELL_RY]], "c", ["c", "tanh_c"]),
    line([[X.tc, Y.tanh + ELL_RY], [X.tc, Y.mul - OP_R]], "tanh_c", ["tanh_c", "h"], { arrow: true }),
    line([[X.o, Y.box], [X.o, Y.mul], [X.tc - OP_R, Y.mul]], "o", ["o", "h"], { arrow: true }),
    line([[X.tc, Y.mul + OP_R], [X.tc, Y.bus], [R, Y.bus]], "h", ["h"], { arrow: true }),
    line([[X.up, Y.bus], [X.up, Y.hc + IO_R]], "h", ["h"], { arrow: true }),
    // drawn after the h line going up, over it: colah breaks the h line where it passes the cell state
    line([[X.ct + OP_R, Y.c], [R, Y.c]], "c", peep ? ["c", "tanh_c", "o"] : ["c", "tanh_c"], {
      arrow: true,
      over: [[X.up, Y.c, "h"]],
    }),
    line([[L, Y.bus], [X.m, Y.bus]], "h_prev", all),
    line([[X.x, Y.xc - IO_R], [X.x, Y.bus], [X.m, Y.bus]], null, all),
  ];
  // the bus carrying [h_{t−1}, x_t], in pieces so each gate lights only the stretch that feeds it
  const cols = gates.map((g) => X[g === "c_tilde" ? "ct" : g]);
  let from = X.m;
  cols.forEach((cx, k) => {
    const last = k === cols.length - 1;
    const pts = last ? [[from, Y.bus], [cx, Y.bus], [cx, boxBottom]] : [[from, Y.bus], [cx, Y.bus]];
    lines.push(line(pts, null, gates.slice(k)));
    if (!last) lines.push(line([[cx, Y.bus], [cx, boxBottom]], null, [gates[k]]));
    from = cx;
  });
  const dots = [
    { x: X.tc, y: Y.c, parts: ["c", "tanh_c"] },
    { x: X.up, y: Y.bus, parts: ["h"] },
    ...cols.slice(0, -1).map((cx, k) => ({ x: cx, y: Y.bus, parts: gates.slice(k) })),
  ];
  if (coupled) {
    lines.push(line([[X.f, Y.mul], [X.i - ELL_RX, Y.mul]], "f", ["f", "i"]));
    lines.push(line([[X.i + ELL_RX, Y.mul], [X.ct - OP_R, Y.mul]], "i", ["i", "i_c_tilde"], { arrow: true }));
    dots.push({ x: X.f, y: Y.mul, parts: ["f", "i"] });
  } else {
    lines.push(line([[X.i, Y.box], [X.i, Y.mul], [X.ct - OP_R, Y.mul]], "i", ["i", "i_c_tilde"], { arrow: true }));
  }
  if (peep) {
    // peepholes: C_{t−1} into f and i, C_t into o, hooking into the boxes from below (colah's figure)
    const hf = X.f - 14;
    const hi = X.i - 14;
    const ho = X.o - 14;
    lines.push(line([[X.pf, Y.c], [X.pf, Y.pp], [hf, Y.pp], [hf, boxBottom]], "c_prev", ["f", "i"]));
    lines.push(line([[hf, Y.pp], [hi, Y.pp], [hi, boxBottom]], "c_prev", ["i"], { over: [[X.f, Y.pp, "h"]] }));
    lines.push(line([[X.po, Y.c], [X.po, Y.pp], [ho, Y.pp], [ho, boxBottom]], "c", ["o"]));
    dots.push({ x: X.pf, y: Y.c, parts: ["f", "i"] }, { x: hf, y: Y.pp, parts: ["f", "i"] });
    dots.push({ x: X.po, y: Y.c, parts: ["o"] });
  }
  const σ = "σ";
  const inputs = peep ? "[Cₜ₋₁, hₜ₋₁, xₜ]" : "[hₜ₋₁, xₜ]";
  const boxes = [
    { part: "f", x: X.f, y: Y.box, label: σ, title: `forget gate: f = σ(W_f · ${inputs} + b_f)` },
    { part: "c_tilde", x: X.ct, y: Y.box, label: "tanh", title: "candidate: C̃ = tanh(W_C · [hₜ₋₁, xₜ] + b_C)" },
    {
      part: "o", x: X.o, y: Y.box, label: σ,
      title: `output gate: o = σ(W_o · ${peep ? "[Cₜ, hₜ₋₁, xₜ]" : "[hₜ₋₁, xₜ]"} + b_o)`,
    },
  ];
  if (!coupled) boxes.splice(1, 0, { part: "i", x: X.i, y: Y.box, label: σ, title: `input gate: i = σ(W_i · ${inputs} + b_i)` });
  const ops = [
    { part: "f_c_prev", x: X.f, y: Y.c, kind: "mul", title: "f × Cₜ₋₁: what the cell keeps" },
    { part: "c", x: X.ct, y: Y.c, kind: "add", title: "cell state: Cₜ = f × Cₜ₋₁ + i × C̃" },
    { part: "i_c_tilde", x: X.ct, y: Y.mul, kind: "mul", title: "i × C̃: what the cell writes" },
    { part: "tanh_c", x: X.tc, y: Y.tanh, kind: "tanh", title: "tanh(Cₜ)" },
    { part: "h", x: X.tc, y: Y.mul, kind: "mul", title: "output: hₜ = o × tanh(Cₜ)" },
  ];
  if (coupled) ops.push({ part: "i", x: X.i, y: Y.mul, kind: "one", title: "coupled input gate: i = 1 − f" });
  const midV = (a, b) => (a + b) / 2;
  const numRowY = Y.box - 16;
  const nums = [
    numAbove("c_prev", 8, Y.c, "C", "t−1"),
    numAbove("f_c_prev", X.f + OP_R + 28, Y.c),
    numAbove("c", (peep ? X.po : X.ct + OP_R) + 12, Y.c, "C", "t"),
    numLeft("f", X.f, numRowY, "f"),
    numLeft("c_tilde", X.ct, numRowY, "C̃"),
    numLeft("i_c_tilde", X.ct, midV(Y.c + OP_R, Y.mul - OP_R)),
    numLeft("tanh_c", X.tc, midV(Y.tanh + ELL_RY, Y.mul - OP_R)),
    peep ? numRight("o", X.o, numRowY, "o") : numLeft("o", X.o, numRowY, "o"),
    numLeft("h", X.up, midV(Y.hc + IO_R, Y.top)),
    numAbove("h_prev", 8, Y.bus, "h", "t−1"),
    coupled ? numAbove("i", X.i + ELL_RX + 6, Y.mul, "i") : numLeft("i", X.i, numRowY, "i"),
  ];
  const rowStrip = (key, cx, dir = "left") => strip(key, dir, cx, Y.mul + 12, Y.box - 4);
  const strips = [
    peep ? strip("c_prev", "below", Y.c, X.pf + 8, X.f - OP_R - 6) : strip("c_prev", "below", Y.c, 6, X.f - OP_R - 6),
    strip("f_c_prev", "below", Y.c, X.f + OP_R + 10, X.ct - OP_R - 10),
    strip("c", "below", Y.c, (peep ? X.po : X.ct + OP_R) + 10, X.tc - 10),
    rowStrip("f", X.f),
    rowStrip("c_tilde", X.ct),
    rowStrip("o", X.o, peep ? "right" : "left"),
    strip("i_c_tilde", "left", X.ct, Y.c + OP_R + 8, Y.mul - OP_R - 8),
    strip("tanh_c", "left", X.tc, Y.tanh + ELL_RY + 4, Y.mul - OP_R - 4),
    strip("h", "left", X.up, Y.hc + IO_R + HEAD_L + 2, Y.top - 6),
    strip("h_prev", "below", Y.bus, 6, X.x - TURN - 4),
    coupled ? strip("i", "below", Y.mul, X.i + ELL_RX + 6, X.ct - OP_R - 8) : rowStrip("i", X.i),
  ];
  return {
    w, height: Y.xc + IO_R + 6, top: Y.top, bottom: Y.bottom, states: [Y.c, Y.bus],
    nbTop: Y.c - 26, nbBottom: Y.bus + 18, xIn: { x: X.x, y: Y.xc }, hOut: { x: X.up, y: Y.hc },
    lines, boxes, ops, dots, nums, strips,
  };
}

/** GRU (colah's "GRU" variant figure): h runs along the top; z, r and the candidate h̃ below it. */
function gruSpec() {
  const w = 550;
  const L = -GAP;
  const R = w + GAP;
  /** Rows: module top, h line, 1− op, × row, box top, the two buses ([h, x] and [r×h, x]), bottom, circles. */
  const Y = { top: 88, c: 116, one: 166, mul: 210, box: 256, b1: 312, b2: 340, bottom: 362, xc: 404, hc: 24 };
  /** Columns: h_{t−1} down to bus 1, x_t rising, h_{t−1} down through r×, then r, z, h̃ and h_t going up. */
  const X = { t1: 40, x: 72, t2: 132, r: 236, z: 336, h: 454, up: 510 };
  const boxBottom = Y.box + BOX_H;
  const lines = [
    line([[L, Y.c], [X.t1, Y.c]], "h_prev", ["z", "r", "r_h_prev", "one_minus_z_h_prev"]),
    line([[X.t1, Y.c], [X.t2, Y.c]], "h_prev", ["r_h_prev", "one_minus_z_h_prev"]),
    line([[X.t2, Y.c], [X.z - OP_R, Y.c]], "h_prev", ["one_minus_z_h_prev"], { arrow: true }),
    line([[X.t1, Y.c], [X.t1, Y.b1], [X.t1 + 14, Y.b1]], "h_prev", ["z", "r"]),
    line([[X.t2, Y.c], [X.t2, Y.mul - OP_R]], "h_prev", ["r_h_prev"], { arrow: true }),
    line([[X.x, Y.xc - IO_R], [X.x, Y.b2]], null, ["z", "r", "h_tilde"]),
    line([[X.x, Y.b2], [X.x, Y.b1]], null, ["z", "r"]),
    line([[X.t1 + 14, Y.b1], [X.r, Y.b1]], null, ["z", "r"]),
    line([[X.r, Y.b1], [X.z, Y.b1], [X.z, boxBottom]], null, ["z"]),
    line([[X.r, Y.b1], [X.r, boxBottom]], null, ["r"]),
    line([[X.x, Y.b2], [X.h, Y.b2], [X.h, boxBottom]], null, ["h_tilde"]),
    line([[X.t2, Y.mul + OP_R], [X.t2, Y.b2], [X.t2 + 14, Y.b2]], "r_h_prev", ["r_h_prev", "h_tilde"], {
      over: [[X.t2, Y.b1, "v"]],
    }),
    line([[X.r, Y.box], [X.r, Y.mul], [X.t2 + OP_R, Y.mul]], "r", ["r", "r_h_prev"], { arrow: true }),
    line([[X.z, Y.box], [X.z, Y.mul]], "z", ["z", "one_minus_z", "z_h_tilde"]),
    line([[X.z, Y.mul], [X.z, Y.one + ELL_RY]], "z", ["z", "one_minus_z"]),
    line([[X.z, Y.mul], [X.h - OP_R, Y.mul]], "z", ["z", "z_h_tilde"], { arrow: true }),
    line([[X.z, Y.one - ELL_RY], [X.z, Y.c + OP_R]], "one_minus_z", ["one_minus_z", "one_minus_z_h_prev"], { arrow: true }),
    line([[X.h, Y.box], [X.h, Y.mul + OP_R]], "h_tilde", ["h_tilde", "z_h_tilde"], { arrow: true }),
    line([[X.h, Y.mul - OP_R], [X.h, Y.c + OP_R]], "z_h_tilde", ["z_h_tilde", "h"], { arrow: true }),
    line([[X.z + OP_R, Y.c], [X.h - OP_R, Y.c]], "one_minus_z_h_prev", ["one_minus_z_h_prev", "h"], { arrow: true }),
    line([[X.h + OP_R, Y.c], [R, Y.c]], "h", ["h"], { arrow: true }),
    line([[X.up, Y.c], [X.up, Y.hc + IO_R]], "h", ["h"], { arrow: true }),
  ];
  const dots = [
    { x: X.t1, y: Y.c, parts: ["z", "r", "r_h_prev", "one_minus_z_h_prev"] },
    { x: X.t2, y: Y.c, parts: ["r_h_prev", "one_minus_z_h_prev"] },
    { x: X.x, y: Y.b2, parts: ["z", "r", "h_tilde"] },
    { x: X.r, y: Y.b1, parts: ["z", "r"] },
    { x: X.z, y: Y.mul, parts: ["z"] },
    { x: X.up, y: Y.c, parts: ["h"] },
  ];
  const boxes = [
    { part: "r", x: X.r, y: Y.box, label: "σ", title: "reset gate: r = σ(W_r · [hₜ₋₁, xₜ])" },
    { part: "z", x: X.z, y: Y.box, label: "σ", title: "update gate: z = σ(W_z · [hₜ₋₁, xₜ])" },
    { part: "h_tilde", x: X.h, y: Y.box, label: "tanh", title: "candidate: h̃ = tanh(W · [r × hₜ₋₁, xₜ])" },
  ];
  const ops = [
    { part: "r_h_prev", x: X.t2, y: Y.mul, kind: "mul", title: "r × hₜ₋₁ (a PyTorch-convention GRU applies r after the weights: then no value is shown)" },
    { part: "one_minus_z", x: X.z, y: Y.one, kind: "one", title: "1 − z" },
    { part: "one_minus_z_h_prev", x: X.z, y: Y.c, kind: "mul", title: "(1 − z) × hₜ₋₁: what h keeps" },
    { part: "z_h_tilde", x: X.h, y: Y.mul, kind: "mul", title: "z × h̃: what h takes from the candidate" },
    { part: "h", x: X.h, y: Y.c, kind: "add", title: "hₜ = (1 − z) × hₜ₋₁ + z × h̃" },
  ];
  const numRowY = Y.box - 16;
  const nums = [
    numAbove("h_prev", X.t2 + 16, Y.c, "h", "t−1"),
    numAbove("one_minus_z_h_prev", X.z + OP_R + 18, Y.c),
    numLeft("r", X.r, numRowY, "r"),
    numLeft("z", X.z, numRowY, "z"),
    numLeft("h_tilde", X.h, numRowY, "h̃"),
    numLeft("r_h_prev", X.t2, (Y.mul + Y.b1) / 2),
    numLeft("one_minus_z", X.z, (Y.one - ELL_RY + Y.c + OP_R) / 2 + 1),
    numLeft("z_h_tilde", X.h, (Y.mul - OP_R + Y.c + OP_R) / 2),
    numLeft("h", X.up, (Y.hc + IO_R + Y.top) / 2),
  ];
  const rowStrip = (key, cx) => strip(key, "left", cx, Y.mul + 12, Y.box - 4);
  const strips = [
    strip("h_prev", "below", Y.c, X.t2 + 10, X.z - 50),
    strip("one_minus_z_h_prev", "below", Y.c, X.z + OP_R + 10, X.h - OP_R - 10),
    rowStrip("r", X.r),
    rowStrip("z", X.z),
    rowStrip("h_tilde", X.h),
    strip("r_h_prev", "left", X.t2, Y.mul + OP_R + 12, Y.b1 - 10),
    strip("one_minus_z", "left", X.z, Y.c + OP_R + 4, Y.one - ELL_RY - 4),
    strip("z_h_tilde", "left", X.h, Y.c + OP_R + 8, Y.mul - OP_R - 8),
    strip("h", "left", X.up, Y.hc + IO_R + HEAD_L + 2, Y.top - 6),
  ];
  return {
    w, height: Y.xc + IO_R + 6, top: Y.top, bottom: Y.bottom, states: [Y.c],
    nbTop: Y.c - 26, nbBottom: Y.b2, xIn: { x: X.x, y: Y.xc }, hOut: { x: X.up, y: Y.hc },
    lines, boxes, ops, dots, nums, strips,
  };
}

/** Plain RNN (colah's first figure): one tanh layer; h_{t−1} and x_t merge into it, h_t leaves. */
function rnnSpec() {
  const w = 300;
  const L = -GAP;
  const R = w + GAP;
  /** Rows: module top, fork of h_t, box top, bus, bottom, circles. */
  const Y = { top: 84, fork: 124, box: 192, bus: 264, bottom: 288, xc: 330, hc: 24 };
  /** Columns: x_t rising, merge, the tanh layer (and h_t going up), h_t coming down to the next module. */
  const X = { x: 96, m: 108, box: 176, down: 250 };
  const lines = [
    line([[L, Y.bus], [X.m, Y.bus]], "h_prev", ["h"]),
    line([[X.x, Y.xc - IO_R], [X.x, Y.bus], [X.m, Y.bus]], null, ["h"]),
    line([[X.m, Y.bus], [X.box, Y.bus], [X.box, Y.box + BOX_H]], null, ["h"]),
    line([[X.box, Y.box], [X.box, Y.fork]], "h", ["h"]),
    line([[X.box, Y.fork], [X.box, Y.hc + IO_R]], "h", ["h"], { arrow: true }),
    line([[X.box, Y.fork], [X.down, Y.fork], [X.down, Y.bus], [R, Y.bus]], "h", ["h"], { arrow: true }),
  ];
  const dots = [{ x: X.box, y: Y.fork, parts: ["h"] }];
  const boxes = [{ part: "h", x: X.box, y: Y.box, label: "tanh", title: "hₜ = tanh(W · [hₜ₋₁, xₜ] + b)" }];
  const nums = [numAbove("h_prev", 8, Y.bus, "h", "t−1"), numLeft("h", X.box, (Y.fork + Y.box) / 2, "h", "t")];
  const strips = [strip("h_prev", "below", Y.bus, 6, X.x - TURN - 4), strip("h", "left", X.box, Y.fork + 10, Y.box - 6)];
  return {
    w, height: Y.xc + IO_R + 6, top: Y.top, bottom: Y.bottom, states: [Y.bus],
    nbTop: Y.top + 20, nbBottom: Y.bus + 18, xIn: { x: X.x, y: Y.xc }, hOut: { x: X.box, y: Y.hc },
    lines, boxes, ops: [], dots, nums, strips,
  };
}

/** The spec builder of each cell type a model card may name. */
const SPECS = { lstm: lstmSpec, peephole: lstmSpec, coupled: lstmSpec, gru: gruSpec, rnn: rnnSpec };

// ---------------------------------------------------------------------------------------------------------
// SVG helpers

/** A new SVG element with attributes, appended to parent if given. */
function el(tag, attrs = {}, parent = null) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

/** Path data for a polyline with rounded turns; `trim` shortens its end (to make room for an arrowhead). */
function pathD(pts, trim = 0) {
  const p = pts.map((q) => q.slice());
  if (trim) {
    const [a, b] = [p[p.length - 2], p[p.length - 1]];
    const l = Math.hypot(b[0] - a[0], b[1] - a[1]);
    b[0] -= ((b[0] - a[0]) / l) * trim;
    b[1] -= ((b[1] - a[1]) / l) * trim;
  }
  let d = `M${p[0][0]},${p[0][1]}`;
  for (let k = 1; k < p.length - 1; k++) {
    const [x0, y0] = p[k - 1];
    const [x1, y1] = p[k];
    const [x2, y2] = p[k + 1];
    const l1 = Math.hypot(x1 - x0, y1 - y0);
    const l2 = Math.hypot(x2 - x1, y2 - y1);
    const r = Math.min(TURN, l1 / 2, l2 / 2);
    d += ` L${x1 - ((x1 - x0) / l1) * r},${y1 - ((y1 - y0) / l1) * r}`;
    d += ` Q${x1},${y1} ${x1 + ((x2 - x1) / l2) * r},${y1 + ((y2 - y1) / l2) * r}`;
  }
  const [xe, ye] = p[p.length - 1];
  return d + ` L${xe},${ye}`;
}

/** An arrowhead polygon whose tip is the polyline's last point. */
function headPoints(pts) {
  const [a, b] = [pts[pts.length - 2], pts[pts.length - 1]];
  const l = Math.hypot(b[0] - a[0], b[1] - a[1]);
  const ux = (b[0] - a[0]) / l;
  const uy = (b[1] - a[1]) / l;
  const bx = b[0] - ux * HEAD_L;
  const by = b[1] - uy * HEAD_L;
  return `${b[0]},${b[1]} ${bx - uy * HEAD_W},${by + ux * HEAD_W} ${bx + uy * HEAD_W},${by - ux * HEAD_W}`;
}

/** Text with an optional italic name and subscript before it: "C_{t−1} 0.532". Returns [pad, value] <tspan>s:
 *  the pad takes a figure space for positive values, so a right-aligned label keeps its place when the sign flips. */
function labelled(parent, attrs, name, sub) {
  const text = el("text", attrs, parent);
  const pad = el("tspan", { class: "dg-pad" }, text);
  if (name) {
    el("tspan", { class: "dg-name" }, text).textContent = name;
    if (sub) {
      el("tspan", { class: "dg-sub", dy: 4 }, text).textContent = sub;
      el("tspan", { dy: -4 }, text).textContent = "\u2009";
    } else {
      text.appendChild(document.createTextNode("\u2009"));
    }
  }
  return [pad, el("tspan", { class: "dg-val" }, text)];
}

/** The name with its subscript, as the x_t / h_t circles show it. */
function ioLabel(parent, x, y, name, sub) {
  const text = el("text", { x, y: y + 5, class: "dg-io-label" }, parent);
  text.appendChild(document.createTextNode(name));
  el("tspan", { class: "dg-sub", dy: 4 }, text).textContent = sub;
  return text;
}

// ---------------------------------------------------------------------------------------------------------

/** colah's chain diagram for one cell type, with the selected unit's values on it. */
export class Diagram {
  /** root: an empty element the diagram fills with its own <svg>; hooks.onGate(key | null) on hover. */
  constructor(root, hooks = {}) {
    this._root = root;
    this._hooks = hooks;
    this._svg = null;
    this._spec = null;
    this._view = null;
    this._nbWidth = 0;
    this._hovered = null;
    this._external = null;
    this._litKey = null;
    this._lit = [];
    this._resize = new ResizeObserver(() => this._fit());
    this._resize.observe(root);
  }

  /** Draw the structure for a model card {id, cell, gates, hidden_size, layers, input}. */
  setModel(card) {
    const build = SPECS[card.cell];
    if (!build) throw new Error(`Unknown cell '${card.cell}'`);
    this._card = card;
    this._H = card.hidden_size;
    this._spec = build(card.cell);
    this._view = null;
    this._build();
  }

  /** Put the numbers on for view {t, tokens, unit, lines, vectors, cellMax}; cheap (text, attributes, fills). */
  update(view) {
    if (!this._svg) return;
    this._view = view;
    const { t, lines = {}, vectors = {}, unit = 0 } = view;
    const cellMax = view.cellMax || 1;
    for (const n of this._nums) {
      const series = lines[n.key];
      const v = series ? series[t] : undefined;
      const shown = typeof v === "number";
      if (shown !== n.shown) {
        n.shown = shown;
        n.text.style.display = shown ? "" : "none";
        if (shown) {
          n.val.setAttribute("data-gate", n.key);
        } else {
          n.val.removeAttribute("data-gate");
          n.val.removeAttribute("data-value");
          n.last = undefined;
        }
      }
      if (shown && v !== n.last) {
        n.last = v;
        const s = formatValue(v);
        n.val.textContent = s;
        n.val.setAttribute("data-value", String(v));
        const padded = n.pad !== null && s[0] !== "−";
        if (padded !== n.padded) {
          n.padded = padded;
          n.pad.textContent = padded ? FIGSP : "";
        }
      }
    }
    // same vectors and scale as last time (only the unit or the lines changed): the fills stand
    const fresh = vectors !== this._lastVectors || cellMax !== this._lastCellMax;
    this._lastVectors = vectors;
    this._lastCellMax = cellMax;
    for (const s of this._strips) {
      const vec = lines[s.key] ? this._vector(s.key, vectors) : null;
      if (!!vec !== s.shown) {
        s.shown = !!vec;
        s.g.style.display = vec ? "" : "none";
      }
      if (!vec) {
        s.filled = false;
        continue;
      }
      const n = fresh || !s.filled ? Math.min(vec.length, s.cells.length) : 0;
      s.filled = true;
      for (let u = 0; u < n; u++) {
        const c = colourOf(s.key, vec[u], cellMax);
        if (c !== s.fills[u]) s.cells[u].setAttribute("fill", (s.fills[u] = c));
      }
      if (unit !== s.unit) {
        s.unit = unit;
        const at = s.start + (unit + 0.5) * s.step;
        s.tick.setAttribute(s.vertical ? "y" : "x", at - s.tickLen / 2);
      }
    }
    this._showTokens();
  }

  /** Light one key's path from outside (a box/op part or a line key); null clears. */
  highlight(key) {
    this._external = key;
    if (this._svg && this._hovered === null) this._focus(key);
  }

  // -------------------------------------------------------------------------------------------------------

  /** A strip's vector, when the view hands it over (recorded vectors only: the page never recomputes
   *  the cell's products, so lines such as f·C_{t−1} carry their number and no strip). */
  _vector(key, vectors) {
    return vectors[key] || null;
  }

  _build() {
    const spec = this._spec;
    if (this._hovered !== null) this._hooks.onGate?.(null); // the hovered part is about to go
    const svg = el("svg", {
      class: "dg", "data-cell": this._card.cell, role: "img",
      "aria-label": `${this._card.cell} chain diagram: step t open, its neighbours closed`,
    });
    this._svg = svg;
    this._members = new Map();
    this._nums = [];
    this._strips = [];
    this._lit = [];
    this._litKey = null;
    this._hovered = null;
    this._lastVectors = null;
    const join = (e, parts) => {
      e.classList.add("dg-f");
      for (const p of parts) {
        if (!this._members.has(p)) this._members.set(p, []);
        this._members.get(p).push(e);
      }
    };
    const partsOfKey = (key) => [...new Set(spec.lines.filter((l) => l.key === key).flatMap((l) => [...l.parts, key]))];

    this._nbPrev = el("g", { class: "dg-nb dg-f" }, svg);
    this._nbNext = el("g", { class: "dg-nb dg-f" }, svg);
    el("rect", { class: "dg-module", x: 0, y: spec.top, width: spec.w, height: spec.bottom - spec.top, rx: MODULE_RX }, svg);

    const gLines = el("g", { class: "dg-lines" }, svg);
    const ordered = [...spec.lines].sort((a, b) => a.over.length - b.over.length);
    for (const ln of ordered) {
      const g = el("g", { class: "dg-ln" }, gLines);
      for (const [x, y, dir] of ln.over) {
        const d = dir === "v" ? `M${x},${y - CASING} L${x},${y + CASING}` : `M${x - CASING},${y} L${x + CASING},${y}`;
        el("path", { class: "dg-casing", d }, g);
      }
      el("path", { d: pathD(ln.pts, ln.arrow ? HEAD_L - 1 : 0) }, g);
      if (ln.arrow) el("polygon", { class: "dg-head", points: headPoints(ln.pts) }, g);
      // lines carrying a key also light when that key is highlighted from outside
      join(g, ln.key ? [...ln.parts, `line:${ln.key}`] : ln.parts);
    }
    for (const d of spec.dots) join(el("circle", { class: "dg-dot", cx: d.x, cy: d.y, r: DOT_R }, svg), d.parts);

    const gStrips = el("g", { class: "dg-strips" }, svg);
    for (const s of spec.strips) this._strips.push(this._makeStrip(gStrips, s, partsOfKey(s.key), join));

    for (const b of spec.boxes) {
      const g = el("g", { class: "dg-part dg-box", "data-part": b.part }, svg);
      el("title", {}, g).textContent = b.title;
      const bw = b.label === "tanh" ? BOX_W + 8 : BOX_W;
      el("rect", { x: b.x - bw / 2, y: b.y, width: bw, height: BOX_H, rx: 2 }, g);
      const cls = b.label === "tanh" ? "dg-sym dg-sym-tanh" : "dg-sym";
      el("text", { class: cls, x: b.x, y: b.y + BOX_H / 2 }, g).textContent = b.label;
      this._hoverable(g, b.part);
      join(g, [b.part]);
    }
    for (const o of spec.ops) {
      const g = el("g", { class: `dg-part dg-op dg-op-${o.kind}`, "data-part": o.part }, svg);
      el("title", {}, g).textContent = o.title;
      el("circle", { class: "dg-hit", cx: o.x, cy: o.y, r: OP_R + 6 }, g);
      if (o.kind === "tanh" || o.kind === "one") el("ellipse", { cx: o.x, cy: o.y, rx: ELL_RX, ry: ELL_RY }, g);
      else el("circle", { cx: o.x, cy: o.y, r: OP_R }, g);
      const sym = { mul: "×", add: "+", tanh: "tanh", one: "1−" }[o.kind];
      el("text", { class: `dg-sym dg-sym-${o.kind}`, x: o.x, y: o.y }, g).textContent = sym;
      this._hoverable(g, o.part);
      join(g, [o.part]);
    }

    const gNums = el("g", { class: "dg-nums" }, svg);
    for (const n of spec.nums) {
      const [pad, val] = labelled(gNums, { x: n.x, y: n.y, "text-anchor": n.anchor, class: "dg-num" }, n.name, n.sub);
      const text = val.parentNode;
      join(text, [...partsOfKey(n.key), `line:${n.key}`]);
      text.style.display = "none"; // until update() has a value for it
      this._nums.push({ key: n.key, text, val, pad: n.anchor === "end" ? pad : null, padded: false, shown: false, last: undefined });
    }

    // x_t entering below, h_t leaving above
    const xParts = [...new Set(spec.lines.filter((l) => l.key === null && l.pts[0][1] === spec.xIn.y - IO_R).flatMap((l) => l.parts))];
    const gx = el("g", { class: "dg-io dg-x" }, svg);
    el("circle", { cx: spec.xIn.x, cy: spec.xIn.y, r: IO_R }, gx);
    ioLabel(gx, spec.xIn.x - 7, spec.xIn.y, "x", "t");
    this._xToken = el("text", { class: "dg-token", x: spec.xIn.x + IO_R + 7, y: spec.xIn.y + 5 }, gx);
    join(gx, xParts);
    const gh = el("g", { class: "dg-io dg-h" }, svg);
    el("circle", { cx: spec.hOut.x, cy: spec.hOut.y, r: IO_R }, gh);
    ioLabel(gh, spec.hOut.x - 7, spec.hOut.y, "h", "t");
    join(gh, ["h", "line:h"]);

    this._root.replaceChildren(svg);
    this._nbWidth = 0;
    this._fit(true);
    this._focus(this._external);
  }

  _makeStrip(parent, s, parts, join) {
    const H = this._H;
    const g = el("g", { class: "dg-strip", "data-strip": s.key }, parent);
    const len = s.vertical ? s.h : s.w;
    const step = len / H;
    const pad = H > 24 ? 0.35 : 0; // overlap neighbours slightly so thin cells show no seams
    const cells = new Array(H);
    for (let u = 0; u < H; u++) {
      const a = (s.vertical ? s.y : s.x) + u * step;
      const size = u === H - 1 ? step : step + pad;
      cells[u] = el(
        "rect",
        s.vertical ? { x: s.x, y: a, width: s.w, height: size } : { x: a, y: s.y, width: size, height: s.h },
        g,
      );
    }
    el("rect", { class: "dg-strip-frame", x: s.x, y: s.y, width: s.w, height: s.h }, g);
    const tickLen = Math.max(step, 1.2);
    // an outline across the strip marks the selected unit's cell
    const tick = el(
      "rect",
      s.vertical
        ? { class: "dg-tick", x: s.x - 1.5, y: s.y, width: s.w + 3, height: tickLen }
        : { class: "dg-tick", x: s.x, y: s.y - 1.5, width: tickLen, height: s.h + 3 },
      g,
    );
    join(g, [...parts, `line:${s.key}`]);
    return {
      key: s.key, g, cells, fills: new Array(H), tick, tickLen, step, vertical: s.vertical,
      start: s.vertical ? s.y : s.x, unit: -1, shown: true, filled: false,
    };
  }

  _hoverable(g, part) {
    g.addEventListener("pointerenter", () => {
      this._hovered = part;
      this._focus(part);
      this._hooks.onGate?.(part);
    });
    g.addEventListener("pointerleave", () => {
      if (this._hovered !== part) return;
      this._hovered = null;
      this._focus(this._external);
      this._hooks.onGate?.(null);
    });
  }

  /** Light a part's path (or, for a key with no part, the line carrying it) and fade the rest. */
  _focus(key) {
    if (key === this._litKey) return;
    for (const e of this._lit) e.classList.remove("dg-lit");
    this._litKey = key;
    this._lit = (key && (this._members.get(key) || this._members.get(`line:${key}`))) || [];
    for (const e of this._lit) e.classList.add("dg-lit");
    this._svg.classList.toggle("dg-focusing", this._lit.length > 0);
  }

  /** Size the closed neighbours to the page width and set the viewBox (on build and on resize only). */
  _fit(force = false) {
    const spec = this._spec;
    if (!spec || !this._svg) return;
    const px = this._root.clientWidth || 1000;
    const ideal = (px - spec.w) / 2 - GAP - STUB;
    const widest = Math.min(NEIGHBOUR_MAX, spec.w * NEIGHBOUR_SHARE);
    const nb = Math.round(Math.max(NEIGHBOUR_MIN, Math.min(widest, ideal)) / 4) * 4;
    if (nb === this._nbWidth && !force) return;
    this._nbWidth = nb;
    const width = Math.max(spec.w + 2 * (GAP + nb + STUB), px / MAX_SCALE);
    this._svg.setAttribute("viewBox", `${(spec.w - width) / 2} 0 ${width} ${spec.height}`);
    this._drawNeighbour(this._nbPrev, -GAP - nb, nb, "prev");
    this._drawNeighbour(this._nbNext, spec.w + GAP, nb, "next");
    this._showTokens();
  }

  _drawNeighbour(g, x, nb, side) {
    const spec = this._spec;
    g.replaceChildren();
    const cx = x + nb / 2;
    const outer = side === "prev" ? x - STUB : x + nb + STUB;
    for (const y of spec.states) {
      const pts = side === "prev" ? [[outer, y], [x, y]] : [[x + nb, y], [outer, y]];
      el("path", { class: "dg-nb-line", d: pathD(pts, HEAD_L - 1) }, g);
      el("polygon", { class: "dg-nb-head", points: headPoints(pts) }, g);
    }
    el("path", { class: "dg-nb-line", d: `M${cx},${spec.xIn.y - 8} L${cx},${spec.nbBottom}` }, g);
    el("rect", { class: "dg-nb-box", x, y: spec.nbTop, width: nb, height: spec.nbBottom - spec.nbTop, rx: NEIGHBOUR_RX }, g);
    el("text", { class: "dg-nb-a", x: cx, y: (spec.nbTop + spec.nbBottom) / 2 }, g).textContent = "A";
    const tok = el("text", { class: "dg-nb-token", x: cx, y: spec.xIn.y + 9 }, g);
    if (side === "prev") this._prevToken = tok;
    else this._nextToken = tok;
  }

  _showTokens() {
    const v = this._view;
    if (!v || !this._xToken) return;
    const tokens = v.tokens || [];
    const t = v.t;
    const set = (e, s) => e.textContent !== s && (e.textContent = s);
    set(this._xToken, showToken(tokens[t]));
    const hasPrev = t > 0;
    const hasNext = t + 1 < tokens.length;
    this._nbPrev.classList.toggle("dg-absent", !hasPrev);
    this._nbNext.classList.toggle("dg-absent", !hasNext);
    set(this._prevToken, hasPrev ? showToken(tokens[t - 1]) : "");
    set(this._nextToken, hasNext ? showToken(tokens[t + 1]) : "");
  }
}
