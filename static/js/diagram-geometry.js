/**
 * The chain diagram's geometry: for each cell type a "spec" (lines, boxes, ops, dots, numbers and strips in
 * module coordinates) drawn in colah's grammar, and the sizes they are drawn at. diagram.js turns a spec
 * into SVG and puts the numbers on.
 */
/** Gap between the open module and a closed neighbour, in SVG units (the state lines cross it). */
export const GAP = 24;
/** How far the state lines stick out of the outer side of each neighbour. */
export const STUB = 14;
/** Narrowest and widest closed neighbour: it narrows with the page so the open module's text stays legible. */
export const NEIGHBOUR_MIN = 46;
export const NEIGHBOUR_MAX = 170;
/** Widest closed neighbour as a share of the open module's width (so the open one stays clearly larger). */
export const NEIGHBOUR_SHARE = 0.4;
/** Largest on-screen pixels per SVG unit: a small figure (the RNN) on a wide page gets margins, not giant text. */
export const MAX_SCALE = 1.1;
/** Radius of a pointwise-op circle; half-axes of the tanh and 1− ellipses. */
export const OP_R = 11;
export const ELL_RX = 19;
export const ELL_RY = 11;
/** Width and height of a learned-layer box. */
export const BOX_W = 44;
export const BOX_H = 28;
/** Corner radius where a line turns. */
export const TURN = 10;
/** Colour-strip thickness, its distance from its line, and its longest length. */
export const STRIP_W = 6;
export const STRIP_OFF = 4;
export const STRIP_MAX = 110;
/** Distance from a vertical line to the near edge of its number (its strip sits in between). */
export const NUM_OFF = STRIP_OFF + STRIP_W + 7;
/** Arrowhead length and half-width. */
export const HEAD_L = 9;
export const HEAD_W = 4.6;
/** Radius of the x_t and h_t circles; of a fork dot; corner radius of the open module and the neighbours. */
export const IO_R = 14;
export const DOT_R = 3.6;
export const MODULE_RX = 16;
export const NEIGHBOUR_RX = 12;
/** Half-length of the gap cut into a line where another passes over it. */
export const CASING = 7;
/** Font size of the numbers (SVG units = CSS px at scale 1, as in diagram.css); used to centre them on a point. */
export const NUM_FONT = 15;

// ---------------------------------------------------------------------------------------------------------
// Geometry. Each cell type is a "spec": lines, boxes, ops, dots, numbers and strips in module coordinates
// (x = 0 at the open module's left edge, L = -GAP the left neighbour's right edge, R = w + GAP the right one's).

/** A line: a polyline with rounded turns; `key` is the lines key it carries (null for a concatenation). */
export const line = (pts, key, parts, opt = {}) => ({ pts, key, parts, arrow: !!opt.arrow, over: opt.over || [] });
/** A number left/right of a vertical line, centred on y; or above a horizontal line, starting at x. */
export const numLeft = (key, x, y, name, sub) => ({ key, x: x - NUM_OFF, y: y + NUM_FONT * 0.36, anchor: "end", name, sub });
export const numRight = (key, x, y, name, sub) => ({ key, x: x + NUM_OFF, y: y + NUM_FONT * 0.36, anchor: "start", name, sub });
export const numAbove = (key, x, y, name, sub) => ({ key, x, y: y - 6, anchor: "start", name, sub });
/** A strip right/left of a vertical line from y0 to y1, or below a horizontal line from x0 to x1 (centred, capped). */
export function strip(key, dir, at, a0, a1) {
  const len = Math.min(a1 - a0, STRIP_MAX);
  const s0 = (a0 + a1 - len) / 2;
  if (dir === "below") return { key, x: s0, y: at + STRIP_OFF, w: len, h: STRIP_W, vertical: false };
  const x = dir === "right" ? at + STRIP_OFF : at - STRIP_OFF - STRIP_W;
  return { key, x, y: s0, w: STRIP_W, h: len, vertical: true };
}

/** LSTM, peephole LSTM and coupled-gate LSTM (colah's chain figure and its variants). */
export function lstmSpec(cell) {
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
    strip("i_c_tilde", "left", X.ct, Y.c + OP_R + 8, Y.mul - OP_R - 8),
    strip("tanh_c", "left", X.tc, Y.tanh + ELL_RY + 4, Y.mul - OP_R - 4),
    rowStrip("f", X.f),
    rowStrip("c_tilde", X.ct),
    rowStrip("o", X.o, peep ? "right" : "left"),
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
export function gruSpec() {
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
    strip("r_h_prev", "left", X.t2, Y.mul + OP_R + 12, Y.b1 - 10),
    strip("one_minus_z", "left", X.z, Y.c + OP_R + 4, Y.one - ELL_RY - 4),
    strip("z_h_tilde", "left", X.h, Y.c + OP_R + 8, Y.mul - OP_R - 8),
    rowStrip("r", X.r),
    rowStrip("z", X.z),
    rowStrip("h_tilde", X.h),
    strip("h", "left", X.up, Y.hc + IO_R + HEAD_L + 2, Y.top - 6),
  ];
  return {
    w, height: Y.xc + IO_R + 6, top: Y.top, bottom: Y.bottom, states: [Y.c],
    nbTop: Y.c - 26, nbBottom: Y.b2, xIn: { x: X.x, y: Y.xc }, hOut: { x: X.up, y: Y.hc },
    lines, boxes, ops, dots, nums, strips,
  };
}

/** Plain RNN (colah's first figure): one tanh layer; h_{t−1} and x_t merge into it, h_t leaves. */
export function rnnSpec() {
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

/** A later step's name for what a backward direction reads: its previous state is step t+1's. */
const later = (s) => s && s.replaceAll("t−1", "t+1").replaceAll("ₜ₋₁", "ₜ₊₁");

/**
 * A spec mirrored left to right: the module of a backward direction, which reads the text from the end.
 * Its state enters from the right (step t+1) and leaves to the left (step t−1): every arrow points from
 * t+1 to t. Names of the previous state say t+1; numbers swap sides of their lines.
 */
export function mirrored(spec) {
  const w = spec.w;
  const fx = (x) => w - x;
  return {
    ...spec,
    mirrored: true,
    lines: spec.lines.map((l) => ({ ...l, pts: l.pts.map(([x, y]) => [fx(x), y]), over: l.over.map(([x, y, d]) => [fx(x), y, d]) })),
    boxes: spec.boxes.map((b) => ({ ...b, x: fx(b.x), title: later(b.title) })),
    ops: spec.ops.map((o) => ({ ...o, x: fx(o.x), title: later(o.title) })),
    dots: spec.dots.map((d) => ({ ...d, x: fx(d.x) })),
    nums: spec.nums.map((n) => ({ ...n, x: fx(n.x), anchor: n.anchor === "end" ? "start" : "end", sub: later(n.sub) })),
    strips: spec.strips.map((s) => ({ ...s, x: w - s.x - s.w })),
    xIn: { ...spec.xIn, x: fx(spec.xIn.x) },
    hOut: { ...spec.hOut, x: fx(spec.hOut.x) },
  };
}

/** The spec builder of each cell type a model card may name. */
export const SPECS = { lstm: lstmSpec, peephole: lstmSpec, coupled: lstmSpec, gru: gruSpec, rnn: rnnSpec };
