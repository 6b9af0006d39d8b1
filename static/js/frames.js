/**
 * Binary frames (app/encoding.py `dumps_binary`) and their compact arrays, read into Float32Arrays. Shared by
 * api.js (small replies, read at once) and decode-worker.js (large replies, read off the main thread): plain
 * functions, no DOM, no network.
 */

let _f16Table = null;
/** float16 bit pattern -> value, for browsers without Float16Array (65,536 entries, built once). */
function f16Table() {
  if (_f16Table) return _f16Table;
  const t = new Float32Array(65536);
  for (let q = 0; q < 65536; q++) {
    const s = q & 0x8000 ? -1 : 1;
    const e = (q >> 10) & 0x1f;
    const m = q & 0x3ff;
    if (e === 0) t[q] = s * m * 2 ** -24;
    else if (e === 31) t[q] = m ? NaN : s * Infinity;
    else t[q] = s * (1 + m / 1024) * 2 ** (e - 15);
  }
  return (_f16Table = t);
}

/** A compact array of a binary frame as a Float32Array (row-major, shape[0] × shape[1]): its "data" is
 * {offset, length} into the frame's `payload` (see `parseFrame`), aligned to 4 bytes and read in place.
 * `before` and `after` (values) leave room around it in its buffer: the array is a view at `before` (a long reply's
 * steps after the ones the page keeps: state.js's Series copies those few into the room and keeps the buffer). */
export function decode(packed, payload, before = 0, after = 0) {
  const n = packed.shape.reduce((a, b) => a * b, 1);
  const [buffer, at] = [payload.buffer, payload.start + packed.data.offset];
  const out = before || after ? new Float32Array(before + n + after).subarray(before, before + n) : new Float32Array(n);
  if (packed.dtype === "u16") {
    const q = new Uint16Array(buffer, at, n);
    const lo = packed.lo;
    const step = (packed.hi - packed.lo) / 65535;
    for (let k = 0; k < n; k++) out[k] = lo + q[k] * step;
  } else if (packed.dtype === "f16") {
    if (typeof Float16Array === "function") {
      out.set(new Float16Array(buffer, at, n));
    } else {
      const q = new Uint16Array(buffer, at, n);
      const table = f16Table();
      for (let k = 0; k < n; k++) out[k] = table[q[k]];
    }
  } else if (packed.dtype === "f32") {
    out.set(new Float32Array(buffer, at, n));
  } else {
    throw new Error(`Unknown compact dtype '${packed.dtype}'`);
  }
  return out;
}

/** The first bytes of a binary frame ("GSC1"), then the JSON header's length (uint32, little-endian). */
const MAGIC = [0x47, 0x53, 0x43, 0x31];

/** A binary frame (app/encoding.py `dumps_binary`) as {msg: its JSON header, payload: where the arrays start}. */
export function parseFrame(buffer) {
  const head = new Uint8Array(buffer, 0, 8);
  if (!MAGIC.every((b, k) => head[k] === b)) throw new Error("Unknown binary frame (no GSC1)");
  const n = new DataView(buffer).getUint32(4, true);
  const msg = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  return { msg, payload: { buffer, start: 8 + n } };
}

/** Headroom a long reply's buffers get past its last step, as a share of its steps (typing after a paste then
 *  writes into them: no 60 MB copy on the first key). */
const HEADROOM = 1 / 8;

/** Decode an edit reply in place of its compact parts: layers[l][gate], probs.p, values and targets
 * (a values head's outputs, float32, NaN where a target is not known) become {rows, cols, data: Float32Array}.
 * With `room` (the decode worker's long replies), a reply whose new steps outnumber the steps before them
 * (a paste) gets its gates' and predictions' buffers with room for those steps in front and some headroom after,
 * so that the page keeps them without copying the new steps (state.js Series.append). */
export function decodeReply(msg, payload, room = false) {
  const k = msg.from ?? 0;
  const n = (msg.length ?? k) - k;
  const roomy = room && n > k;
  const rows = (packed) => {
    const cols = packed.shape[1];
    const [before, after] = roomy ? [k * cols, Math.ceil((k + n) * HEADROOM) * cols] : [0, 0];
    return { rows: packed.shape[0], cols, data: decode(packed, payload, before, after) };
  };
  const layers = (msg.layers || []).map((layer) => {
    const out = {};
    for (const [gate, packed] of Object.entries(layer)) out[gate] = rows(packed);
    return out;
  });
  let probs = null;
  if (msg.probs) {
    const { k: top, tokens, display } = msg.probs;
    probs = { k: top, tokens, display, p: rows(msg.probs.p) };
  }
  const plain = (packed) => (packed ? { rows: packed.shape[0], cols: packed.shape[1], data: decode(packed, payload) } : null);
  return { ...msg, layers, probs, values: plain(msg.values), targets: plain(msg.targets) };
}

/** A list of strings, or of rows of k strings (a reply's tokens, its top-k predictions' tokens), as one typed array
 *  of indices into its distinct strings: {vocab, index: Uint32Array, k (0: a list of strings), length}. Moved from
 *  the decode worker to the page in one piece: 20,000 steps' 100,000 prediction strings, copied one by one, were
 *  ~20 ms of the page's task that receives a long reply. Null when the list is neither. */
export function packStrings(list) {
  if (!Array.isArray(list)) return null;
  const k = Array.isArray(list[0]) ? list[0].length : 0;
  const ids = new Map();
  const vocab = [];
  const index = new Uint32Array(k ? list.length * k : list.length);
  const id = (s) => {
    let n = ids.get(s);
    if (n === undefined) {
      n = vocab.length;
      ids.set(s, n);
      vocab.push(s);
    }
    return n;
  };
  for (let t = 0; t < list.length; t++) {
    const item = list[t];
    if (!k) {
      if (typeof item !== "string") return null;
      index[t] = id(item);
      continue;
    }
    if (!Array.isArray(item) || item.length !== k) return null; // ragged rows: sent as they are
    for (let j = 0; j < k; j++) index[t * k + j] = id(item[j]);
  }
  return { vocab, index, k, length: list.length };
}

/** packStrings' list again (the rows' strings are the vocabulary's own: no copies). */
export function unpackStrings({ vocab, index, k, length }) {
  const out = new Array(length);
  if (!k) {
    for (let t = 0; t < length; t++) out[t] = vocab[index[t]];
    return out;
  }
  for (let t = 0; t < length; t++) {
    const row = new Array(k);
    for (let j = 0; j < k; j++) row[j] = vocab[index[t * k + j]];
    out[t] = row;
  }
  return out;
}

/** Where a decoded reply's string lists are: [holder, key] pairs (the steps' tokens, the predictions'). */
function stringLists(reply) {
  const out = [[reply, "tokens"], [reply, "display"]];
  if (reply.probs) out.push([reply.probs, "tokens"], [reply.probs, "display"]);
  return out;
}

/** Pack a decoded reply's string lists in place (the decode worker, before posting it); returns the index buffers
 *  to move with it. */
export function packReply(reply) {
  const moved = [];
  for (const [o, key] of stringLists(reply)) {
    const packed = packStrings(o[key]);
    if (!packed) continue;
    o[key] = { packed };
    moved.push(packed.index.buffer);
  }
  return moved;
}

/** packReply's inverse, in place (the page, on receiving a reply from the worker); returns the reply. */
export function unpackReply(reply) {
  for (const [o, key] of stringLists(reply)) if (o[key]?.packed) o[key] = unpackStrings(o[key].packed);
  return reply;
}
