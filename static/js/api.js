/**
 * The only module that talks to the server: GET /api/models, POST /api/trace (downloads), uploads, probes, corpus
 * indexes (their status, a corpus sent, a build's progress as JSON Lines), a unit's dashboard and the documents
 * of the model's corpus index, and the
 * live socket WS /api/live (binary frames: the compact arrays without base64), with `LiveSync`, which keeps
 * a State's trace in step with its text over that socket. It also decodes the compact arrays into
 * Float32Array.
 *
 * Compact arrays (see app/encoding.py, `pack`): {dtype, shape: [rows, H], data: {offset, length} into
 * the frame's payload, lo?, hi?}
 *   u16 -> lo + q * (hi - lo) / 65535      f16 -> float16      f32 -> float32      (little-endian, row-major)
 */

/** An error a person can act on; `status` is the HTTP status when there is one. */
import { decode, decodeReply, parseFrame, unpackReply } from "./frames.js";

export class ApiError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function _detail(res) {
  try {
    const body = await res.json();
    if (typeof body.detail === "string") return body.detail;
    if (Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  } catch {
    /* not JSON */
  }
  return `${res.status} ${res.statusText}`;
}

/** The model cards (GET /api/models). */
export async function listModels() {
  let res;
  try {
    res = await fetch("/api/models");
  } catch {
    throw new ApiError("The server cannot be reached: the model list did not load.");
  }
  if (!res.ok) throw new ApiError(`The model list did not load: ${await _detail(res)}`, res.status);
  return res.json();
}

/** The guided story's chapters (GET /api/story): [{id, title, model, text, layer, unit, t, highlight, words}]. */
export async function getStory() {
  let res;
  try {
    res = await fetch("/api/story");
  } catch {
    throw new ApiError("The server cannot be reached: the tour did not load.");
  }
  if (!res.ok) throw new ApiError(`The tour did not load: ${await _detail(res)}`, res.status);
  return (await res.json()).chapters;
}

/** Whether model `id` can read `text` (POST /api/models/{id}/reads): {reads, why}. */
export async function readsText(id, text) {
  const res = await fetch(`/api/models/${encodeURIComponent(id)}/reads`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text }),
  });
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}

/** A series file (.csv or .npy) read by the server: {csv, steps, features, names}, csv the text to edit. */
export async function readSeries(file) {
  const r = await fetch(`/api/series?name=${encodeURIComponent(file.name)}`, {
    method: "POST",
    headers: { "Content-Type": "application/octet-stream" },
    body: file,
  });
  if (!r.ok) throw new ApiError(await _detail(r), r.status);
  return r.json();
}

/**
 * The whole trace of `text` as a Blob: `encoding` "json" (plain numbers) or "csv". A vector model's
 * trace is of `vectors`, the series as the server read it (its rows, as the live socket sent them back).
 */
export async function traceBlob(model, text, encoding = "json", vectors = null) {
  const query = encoding === "json" ? "" : `?encoding=${encodeURIComponent(encoding)}`;
  let res;
  try {
    res = await fetch(`/api/trace${query}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(vectors ? { model, vectors } : { model, text }),
    });
  } catch {
    throw new ApiError("The server cannot be reached: the trace did not download.");
  }
  if (!res.ok) throw new ApiError(`The trace did not download: ${await _detail(res)}`, res.status);
  return res.blob();
}

/**
 * Upload a weight file (POST /api/models, multipart) with an optional vocabulary and name. Resolves
 * to the new card. onProgress(sent, total) follows the upload (XMLHttpRequest: fetch reports none);
 * once every byte is sent the server reads the file, which onProgress(total, total) marks.
 * output: {head, head_at, labels} (each optional text): what the model's output means.
 */
export function uploadModel(file, vocab = null, name = "", onProgress = () => {}, output = {}, module = "") {
  const form = new FormData();
  form.append("file", file);
  if (vocab) form.append("vocab", vocab);
  if (name) form.append("name", name);
  for (const [key, value] of Object.entries(output)) if (value) form.append(key, value);
  if (module) form.append("module", module);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/models");
    xhr.responseType = "json";
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onerror = () => reject(new ApiError("The server cannot be reached: the model was not uploaded."));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status === 201) return resolve(body);
      const detail = typeof body?.detail === "string" ? body.detail : `${xhr.status} ${xhr.statusText}`;
      const err = new ApiError(detail, xhr.status);
      if (Array.isArray(body?.modules)) err.modules = body.modules; // several recurrent modules: choose one
      reject(err);
    };
    xhr.send(form);
  });
}

/** Remove an uploaded model (DELETE /api/models/{id}). */
export async function deleteModel(id) {
  let res;
  try {
    res = await fetch(`/api/models/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch {
    throw new ApiError("The server cannot be reached: the model was not removed.");
  }
  if (res.status !== 204) throw new ApiError(await _detail(res), res.status);
}

// ---------------------------------------------------------------------------------------------
// Probes: which unit tracks a feature

/** The built-in features of a model (GET /api/models/{id}/features): {features: [{name, description}], python, regex}. */
export async function listFeatures(model) {
  let res;
  try {
    res = await fetch(`/api/models/${encodeURIComponent(model)}/features`);
  } catch {
    throw new ApiError("The server cannot be reached: the features did not load.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}

/**
 * Rank every unit against a feature (POST /api/models/{id}/probe). `body`: {feature | regex | labels, text |
 * index: true, gate?, linear?}. An index probe answers JSON Lines: onProgress({stage, done, total}) for each
 * progress line, and the last line is the result. Resolves to the result; `signal` aborts it.
 */
export async function probeUnits(model, body, onProgress = () => {}, signal = undefined) {
  let res;
  try {
    res = await fetch(`/api/models/${encodeURIComponent(model)}/probe`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError("The server cannot be reached: the probe did not run.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  if (!(res.headers.get("content-type") || "").includes("ndjson")) return res.json();
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let last = null;
  const take = (line) => {
    if (!line.trim()) return;
    const item = JSON.parse(line);
    if (item.progress) onProgress(item.progress);
    else if (item.error) throw new ApiError(item.error, item.status || 0);
    else last = item;
  };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    const lines = buffered.split("\n");
    buffered = lines.pop();
    lines.forEach(take);
  }
  take(buffered);
  if (!last) throw new ApiError("The probe's answer ended before its result.");
  return last;
}

/** Save a unit into a model's known units (POST /api/models/{id}/known-units); resolves to the model's new card. */
export async function saveKnownUnit(model, unit) {
  const id = encodeURIComponent(model);
  let res;
  try {
    res = await fetch(`/api/models/${id}/known-units`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(unit),
    });
    if (!res.ok) throw new ApiError(await _detail(res), res.status);
    res = await fetch(`/api/models/${id}`);
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw new ApiError("The server cannot be reached: the unit was not saved.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}

// ---------------------------------------------------------------------------------------------
// Corpus indexes

const _indexUrl = (id) => `/api/models/${encodeURIComponent(id)}/index`;

/** Where a model's index is (GET /api/models/{id}/index): {state, progress, info, error, ...}. */
export async function indexStatus(id) {
  let res;
  try {
    res = await fetch(_indexUrl(id));
  } catch {
    throw new ApiError("The server cannot be reached: the index status did not load.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}

/**
 * Send a corpus to index (POST /api/models/{id}/index, multipart): resolves to the job's first status (202).
 * options: {per: "file" | "line", carry: boolean}; onProgress(sent, total) follows the upload.
 */
export function startIndex(id, file, { per = "file", carry = false } = {}, onProgress = () => {}) {
  const form = new FormData();
  form.append("corpus", file);
  form.append("per", per);
  form.append("carry", carry ? "1" : "0");
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", _indexUrl(id));
    xhr.responseType = "json";
    xhr.upload.onprogress = (ev) => onProgress(ev.loaded, ev.lengthComputable ? ev.total : file.size);
    xhr.onerror = () => reject(new ApiError("The server cannot be reached: the corpus was not sent."));
    xhr.onload = () => {
      const body = xhr.response;
      if (xhr.status === 202) return resolve(body);
      const detail = typeof body?.detail === "string" ? body.detail : `${xhr.status} ${xhr.statusText}`;
      return reject(new ApiError(detail, xhr.status));
    };
    xhr.send(form);
  });
}

/**
 * Follow a build (GET /api/models/{id}/index/progress, JSON Lines): onStatus(status) for every line; resolves
 * to the last status once the build is ready, failed or gone (or when `signal` aborts: then to null).
 */
export async function followIndex(id, onStatus, signal = undefined) {
  let res;
  try {
    res = await fetch(`${_indexUrl(id)}/progress`, { signal });
  } catch (e) {
    if (signal?.aborted) return null;
    throw new ApiError(`The server cannot be reached: the index's progress stopped (${e.message}).`);
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  let last = null;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        last = JSON.parse(line);
        onStatus(last);
      }
    }
  } catch (e) {
    if (signal?.aborted) return null;
    throw new ApiError(`The index's progress stopped: ${e.message}`);
  }
  return last;
}

/** Cancel a build and remove the model's index (DELETE /api/models/{id}/index). */
export async function deleteIndex(id) {
  let res;
  try {
    res = await fetch(_indexUrl(id), { method: "DELETE" });
  } catch {
    throw new ApiError("The server cannot be reached: the index was not removed.");
  }
  if (res.status !== 204) throw new ApiError(await _detail(res), res.status);
}

// ---------------------------------------------------------------------------------------------
// A unit's dashboard over the index, and one indexed document

/** A unit's dashboard over the model's index (GET /api/models/{id}/units/{layer}/{unit}?gate=..).
 *  An ApiError with status 409 when the model has no index yet. */
export async function unitDashboard(model, layer, unit, gate, { signal } = {}) {
  const url = `/api/models/${encodeURIComponent(model)}/units/${layer}/${unit}?gate=${encodeURIComponent(gate)}`;
  let res;
  try {
    res = await fetch(url, { signal });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError("The server cannot be reached: the unit's dashboard did not load.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}

/** The model's index status (GET /api/models/{id}/index): {state: "none" | "building" | "ready" | "failed", progress}. */


/** One indexed document's text (GET /api/models/{id}/docs/{doc}), or its steps [start, stop) only. */
export async function indexDocument(model, doc, start = null, stop = null) {
  const q = start === null ? "" : `?start=${start}&stop=${stop}`;
  let res;
  try {
    res = await fetch(`/api/models/${encodeURIComponent(model)}/docs/${doc}${q}`);
  } catch {
    throw new ApiError("The server cannot be reached: the document did not load.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}


// ---------------------------------------------------------------------------------------------
// Saturation, unit order, pattern match (app/api/views.py)

/** A JSON request to the API: the body it answers, or an ApiError with its detail (and status). */
async function _json(path, body = undefined, signal = undefined) {
  const init = body === undefined ? { signal } : { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal };
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError("The server cannot be reached.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  return res.json();
}

/** Each unit's fraction of steps left- and right-saturated per bounded gate (POST /api/models/{id}/saturation):
 *  `source` {text} or {index: true}. */
export function saturation(model, source, layer, signal) {
  return _json(`/api/models/${encodeURIComponent(model)}/saturation`, { ...source, layer }, signal);
}

/** Whether POST /api/trace would run `text` with `interventions` (POST /api/trace/check: its checks, none of its
 *  work): resolves to {steps, interventions}; a refusal throws an ApiError with the server's detail. */
export function checkTrace(model, text, interventions, signal) {
  return _json("/api/trace/check", { model, text, interventions }, signal);
}

/**
 * The text's trace with `interventions` held (POST /api/trace?encoding=binary, model/interventions.py): resolves to
 * {tokens, intervened (each as run: units, from, to), effect}, the effect's arrays decoded as {rows, cols, data}:
 * p_before, p_after, dloglik (T; NaN where not defined), top_before/top_after ({k, tokens, p}), layers (per layer,
 * gate -> (T, H) after − before).
 */
export async function traceIntervened(model, text, interventions, signal) {
  let res;
  try {
    res = await fetch("/api/trace?encoding=binary", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ model, text, interventions }), signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError("The server cannot be reached.");
  }
  if (!res.ok) throw new ApiError(await _detail(res), res.status);
  const { msg, payload } = parseFrame(await res.arrayBuffer());
  const rows = (packed) => (packed ? { rows: packed.shape[0], cols: packed.shape[1] ?? 1, data: decode(packed, payload) } : null);
  const top = (t) => (t ? { ...t, p: rows(t.p) } : null);
  const e = msg.effect;
  const effect = {
    p_before: rows(e.p_before), p_after: rows(e.p_after), dloglik: rows(e.dloglik),
    top_before: top(e.top_before), top_after: top(e.top_after),
    probs_before: rows(e.probs_before), probs_after: rows(e.probs_after),
    values_before: rows(e.values_before), values_after: rows(e.values_after),
    layers: e.layers.map((la) => Object.fromEntries(Object.entries(la).map(([g, packed]) => [g, rows(packed)]))),
  };
  return { tokens: msg.tokens, intervened: msg.intervened, effect };
}

/** What the prediction at step t depends on (POST /api/attribute): body {model, text, t, method, steps, layer}. */
export function attribute(body, signal) {
  return _json("/api/attribute", body, signal);
}

/** Whether model `id`'s first gradient × input waits on a compile (GET /api/models/{id}/attribution):
 *  {kind, cell ("GRU"), kernels: "cold" | "compiling" | "ready" | "failed"}. */
export function attributionKernels(id, signal) {
  return _json(`/api/models/${encodeURIComponent(id)}/attribution`, undefined, signal);
}

/** Two runs side by side (POST /api/compare): body {model, text, model_b, text_b, layer, match, gates}. */
export function compareRuns(body, signal) {
  return _json("/api/compare", body, signal);
}

/** The layer's units ordered by similar activity (POST /api/models/{id}/order): over the model's index when it has
 *  one ready, else over `text` (the answer's `source` says which). */
export function unitOrder(model, layer, gate, text, signal) {
  return _json(`/api/models/${encodeURIComponent(model)}/order`, { text, layer, gate, index: "auto" }, signal);
}

/** The units on during a span of the text and the runs where they are on (POST /api/models/{id}/match). */
export function matchPattern(model, body, signal) {
  return _json(`/api/models/${encodeURIComponent(model)}/match`, body, signal);
}

// ---------------------------------------------------------------------------------------------
// Compact arrays (frames.js; large live replies are read by decode-worker.js)

export { decode, decodeReply, parseFrame } from "./frames.js";

// ---------------------------------------------------------------------------------------------
// The live socket

/** Frames at least this large (bytes) are decoded in decode-worker.js: ~20 ms of decoding on the main thread. */
const WORKER_BYTES = 1 << 20;

/** A socket message (a binary frame or JSON text) as {msg, reply}: reply is the decoded edit reply, or null. */
function readFrame(raw) {
  if (!(raw instanceof ArrayBuffer)) return { msg: JSON.parse(raw), reply: null };
  const { msg, payload } = parseFrame(raw);
  return { msg, reply: msg.layers !== undefined ? decodeReply(msg, payload) : null };
}

let _worker = null;
let _asked = 0;
const _waiting = new Map();

/** The first bytes of one part of a reply sent in parts (app/encoding.py split_parts: "GSP1", index, count). */
const PART_MAGIC = 0x31505347; // "GSP1" read as a little-endian uint32

/** [index, count] of a reply's part, or null when the frame is a whole message. */
function partOf(raw) {
  if (raw.byteLength < 12) return null;
  const head = new DataView(raw, 0, 12);
  return head.getUint32(0, true) === PART_MAGIC ? [head.getUint32(4, true), head.getUint32(8, true)] : null;
}

/** The worker, started on first use; its replies settle the promises in _waiting. */
function worker() {
  if (!_worker) {
    _worker = new Worker(new URL("./decode-worker.js", import.meta.url), { type: "module" });
    _worker.onmessage = ({ data }) => {
      const done = _waiting.get(data.id);
      _waiting.delete(data.id);
      if (data.error) done.reject(new Error(data.error));
      else done.resolve({ msg: data.msg ?? unpackReply(data.reply), reply: data.reply ?? null });
    };
  }
  return _worker;
}

/** Read a binary frame in the decode worker (the buffer is moved there): resolves to {msg, reply} as readFrame. */
function decodeInWorker(buffer) {
  const w = worker();
  const id = ++_asked;
  return new Promise((resolve, reject) => {
    _waiting.set(id, { resolve, reject });
    w.postMessage({ id, buffer }, [buffer]);
  });
}

/** Hand one part of a reply to the worker, which joins them (parts come in order, one reply at a time): null
 *  until the last part, then a promise of {msg, reply} as decodeInWorker's. */
function partToWorker(buffer, [index, count]) {
  const w = worker();
  if (index === 0) ++_asked; // the reply's id: every part of it carries it
  const id = _asked;
  if (index + 1 < count) {
    w.postMessage({ id, part: buffer, index, count }, [buffer]);
    return null;
  }
  return new Promise((resolve, reject) => {
    _waiting.set(id, { resolve, reject });
    w.postMessage({ id, part: buffer, index, count }, [buffer]);
  });
}

/** Reconnect delays in ms (then the last one, repeated). */
const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 8000];
/** The close code of a socket the server closed because it failed on a message (RFC 6455: 1011, internal error). */
const SERVER_FAILED = 1011;

/**
 * WS /api/live with automatic reconnection. Every edit and focus change carries a `seq`; replies
 * come back in order (a superseded edit gets none). After a reconnect the current edit is sent
 * again (the server's cache is gone, so its reply starts from step 0) — unless the server closed
 * the socket because it failed on that edit (1011): that answer is shown (onError), never resent
 * (the same text would fail the same way); the next edit opens a fresh socket.
 *
 * hooks: onEdit(reply decoded), onFocus(reply), onError(seq, message), onStatus({state, retryIn})
 */
export class Live {
  constructor(hooks = {}) {
    this._hooks = hooks;
    this._ws = null;
    this._seq = 0;
    this._edit = null; // the latest edit message (resent after a reconnect)
    this._tries = 0;
    this._timer = null;
    this._everOpen = false;
    this._pending = 0; // replies waiting behind one the worker reads
    this._queue = Promise.resolve();
  }

  /** Send an edit: the whole text (a vector model's: its series as CSV, `kind` "csv"), with the unit the
   *  page shows and the units held (POST /api/trace's "interventions"; [] none: a plain trace). Returns its seq. */
  edit(model, text, focus, kind = "text", interventions = []) {
    const msg = { seq: ++this._seq, model, [kind]: text, encoding: "binary", focus };
    // the held run only: the page never reads the socket's effect (its panel asks POST /api/trace for that), and
    // sparing the plain run beside it halves what a key costs with units held (bench/causal_live.py)
    if (interventions.length) Object.assign(msg, { interventions, effect: false });
    this._edit = msg;
    this._send(msg);
    return msg.seq;
  }

  /** Ask for the exact lines of another unit or layer (after at least one edit). Returns its seq. */
  focus(layer, unit) {
    if (!this._edit) return 0;
    const msg = { seq: ++this._seq, focus: { layer, unit } };
    this._edit = { ...this._edit, focus: { layer, unit } };
    if (this._isOpen()) this._send(msg);
    // when closed, the edit resent on reconnect carries the new focus
    return msg.seq;
  }

  /** Open the socket now (before the first edit), so the first edit need not wait for the handshake. */
  connect() {
    if (!this._ws && !this._timer) this._connect();
  }

  /** Forget the current edit (the text is empty): nothing is resent on reconnect. */
  clear() {
    this._edit = null;
  }

  /** Drop the connection and open a fresh one (a fresh server cache); the current edit is resent. */
  reset() {
    if (this._ws) {
      this._ws.onclose = null;
      this._ws.onmessage = null;
      this._ws.close();
      this._ws = null;
    }
    this._connect();
  }

  _isOpen() {
    return this._ws !== null && this._ws.readyState === WebSocket.OPEN;
  }

  _send(msg) {
    if (this._isOpen()) {
      this._ws.send(JSON.stringify(msg));
    } else if (!this._ws && !this._timer) {
      this._connect();
    }
  }

  _connect() {
    clearTimeout(this._timer);
    this._timer = null;
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    // parts=1: a long reply comes in 1 MB messages (one 15 MB message is a ~300 ms task to receive)
    const ws = new WebSocket(`${proto}//${location.host}/api/live${typeof Worker === "function" ? "?parts=1" : ""}`);
    ws.binaryType = "arraybuffer"; // edit replies are binary frames: arrays read in place, no base64
    this._ws = ws;
    ws.onopen = () => {
      this._tries = 0;
      this._everOpen = true;
      this._hooks.onStatus?.({ state: "open" });
      if (this._edit) {
        const msg = { ...this._edit, seq: ++this._seq };
        this._edit = msg;
        this._send(msg);
      }
    };
    ws.onmessage = (ev) => this._receive(ev.data);
    ws.onclose = (ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      if (ev.code === SERVER_FAILED) {
        const seq = this._edit?.seq ?? 0;
        this._edit = null; // answered: nothing to resend
        this._tries = 0;
        this._hooks.onError?.(seq, `the server failed on it (${ev.reason || "an internal error"}); it is not sent again: edit the text or choose another model`);
        return;
      }
      const wait = BACKOFF_MS[Math.min(this._tries, BACKOFF_MS.length - 1)];
      this._tries += 1;
      this._hooks.onStatus?.({ state: this._everOpen ? "lost" : "unreachable", retryIn: wait });
      this._timer = setTimeout(() => this._connect(), wait);
    };
  }

  _receive(raw) {
    // a large reply (a long paste: ~15 MB of gates) is read by the worker, off the main thread; the replies
    // behind it wait their turn, so they are handled in the order they came; a reply in parts is joined there
    const part = raw instanceof ArrayBuffer ? partOf(raw) : null;
    const big = part !== null || (raw instanceof ArrayBuffer && raw.byteLength >= WORKER_BYTES && typeof Worker === "function");
    if (!big && this._pending === 0) return this._handle(() => readFrame(raw));
    const read = part ? partToWorker(raw, part) : big ? decodeInWorker(raw) : null;
    if (part && !read) return; // more parts to come
    this._pending += 1;
    // a worker's reply is applied in a task after the one that received it: taking in a long reply (~15 ms) and
    // the views following it (~30 ms) were one long task
    const later = read ? read.then((out) => new Promise((done) => {
      setTimeout(() => done(out), 0);
    })) : null;
    this._queue = this._queue
      .then(() => this._handle(() => later ?? readFrame(raw), true))
      .finally(() => (this._pending -= 1));
  }

  /** Handle a reply read by `read()` ({msg, reply}: reply decoded for an edit); awaited when it is a promise. */
  async _handle(read, wait = false) {
    let out;
    try {
      out = wait ? await read() : read();
    } catch {
      this._hooks.onError?.(0, "The server sent a reply the page cannot read.");
      return;
    }
    const { msg, reply } = out;
    if (msg.error !== undefined) {
      this._hooks.onError?.(msg.seq ?? 0, String(msg.error));
    } else if (msg.layers !== undefined) {
      this._hooks.onEdit?.(reply);
    } else if (msg.focus !== undefined) {
      this._hooks.onFocus?.(msg);
    }
  }
}

/**
 * Keeps a State's trace in step with its text over the live socket: an edit goes out when the model or
 * the text changes, a focus request when the unit or the layer does, and each reply is applied to the
 * state if it still belongs to what the page shows.
 *
 * Which replies are stale: an edit reply for another model, or older than the first edit sent for the
 * model shown (it belongs to another model's session), is dropped. A reply that builds on steps the page
 * no longer holds starts a fresh session (the current text is sent again from step 0). A reply whose
 * focus lines were for another unit (a focus request it overtook) asks for the unit's lines again.
 *
 * hooks: onTraced() when a reply newer than the last error was applied (the text reads again),
 *        onError(message) when the server refused the latest text, onCleared() when the text was emptied,
 *        onStatus({state: "open" | "lost" | "unreachable", retryIn}) as the socket comes and goes.
 */
export class LiveSync {
  constructor(state, hooks = {}) {
    this._state = state;
    this._hooks = hooks;
    this._modelSeq = 0; // seq of the first edit sent for the model shown
    this._focusSeq = 0; // seq of the latest focus request
    this._errorSeq = 0; // seq of the latest refused message
    this._sent = new Map(); // seq -> the text that edit sent, until a later edit's reply arrives
    this._live = new Live({
      onEdit: (reply) => this._onEdit(reply),
      onFocus: (reply) => state.applyFocus(reply.focus),
      onError: (seq, message) => {
        this._errorSeq = seq;
        hooks.onError?.(message);
      },
      onStatus: (status) => hooks.onStatus?.(status),
    });
    state.subscribe((changed) => this._onChange(changed));
  }

  /** Open the socket now, so the first edit need not wait for the handshake. */
  connect() {
    this._live.connect();
  }

  _onChange(changed) {
    const s = this._state;
    if (changed.has("model") || changed.has("text") || changed.has("interventions")) {
      // the views draw the run the model made with the units held (the server re-traces from the first step
      // a changed list touches); its reply says what it held ("intervened": state.heldRuns)
      if (!s.text) {
        this._live.clear();
        this._hooks.onCleared?.();
        return;
      }
      const kind = s.card?.input === "vectors" ? "csv" : "text"; // the server reads a series' CSV itself
      const seq = this._live.edit(s.model, s.text, { layer: s.layer, unit: s.unit }, kind, s.interventions);
      this._sent.set(seq, s.text);
      if (changed.has("model")) this._modelSeq = seq;
    } else if (changed.has("unit") || changed.has("layer")) {
      if (s.text) this._focusSeq = this._live.focus(s.layer, s.unit);
    }
  }

  _onEdit(reply) {
    const s = this._state;
    if (reply.model !== s.model || reply.seq < this._modelSeq) return;
    // the text of the newest edit sent up to this reply (a reconnect resends the current edit under a newer seq)
    let sent = 0;
    for (const seq of this._sent.keys()) if (seq <= reply.seq && seq > sent) sent = seq;
    if (!s.applyEdit(reply, sent ? this._sent.get(sent) : null)) {
      this._live.reset(); // we lack the steps the reply builds on: start a fresh session
      return;
    }
    for (const seq of this._sent.keys()) if (seq < sent) this._sent.delete(seq);
    if (!s.currentLines() && s.T && reply.seq >= this._focusSeq) this._focusSeq = this._live.focus(s.layer, s.unit);
    if (reply.seq >= this._errorSeq) this._hooks.onTraced?.();
  }
}

// ---------------------------------------------------------------------------------------------
// Saved pages: the view as one HTML file, and that file read without a server

/**
 * The page of `model` on `text` as one self-contained HTML file (POST /api/page): a Blob to save. `select`:
 * {layer, unit, t}, what the saved page shows when it opens; `vs`: run b shown beside it ({model, text, match, unit},
 * state.compare), or null.
 */
export async function savePage(model, text, { layer = 0, unit = 0, t = 0, win = null, vs = null } = {}) {
  let res;
  const w = win ? `&win_start=${win.start}&win_size=${win.size}` : "";
  try {
    res = await fetch(`/api/page?layer=${layer}&unit=${unit}&t=${t}${w}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(vs ? { model, text, vs } : { model, text }),
    });
  } catch {
    throw new ApiError("The server cannot be reached: the page was not saved.");
  }
  if (!res.ok) throw new ApiError(`The page was not saved: ${await _detail(res)}`, res.status);
  return res.blob();
}

/** A base64 string's bytes as an ArrayBuffer. */
function _bytes(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let k = 0; k < bin.length; k++) out[k] = bin.charCodeAt(k);
  return out.buffer;
}

/** What a saved page carries (its <script id="gatescope-saved">, app/saved.py): {card, text, select, reply, lines}. */
export function savedPage(doc = document) {
  const node = doc.getElementById("gatescope-saved");
  if (!node) throw new Error("no embedded trace (#gatescope-saved) in this page");
  return JSON.parse(node.textContent);
}

/**
 * A saved page's LiveSync: the state's trace from the embedded reply (the live socket's binary frame, from step 0)
 * and each unit's exact lines from the embedded columns, as the socket's focus replies would bring them. It opens
 * the saved selection and answers every unit or layer chosen.
 */
export class SavedSync {
  constructor(state, saved) {
    this._state = state;
    this._saved = saved;
    const { msg, payload } = parseFrame(_bytes(saved.reply));
    this._reply = decodeReply(msg, payload);
    this._lines = saved.lines.map((layer) =>
      Object.fromEntries(Object.entries(layer).map(([name, col]) => [name, { units: col.units, data: new Float32Array(_bytes(col.data)) }])),
    );
    state.subscribe((changed) => this._onChange(changed));
  }

  /** Show the saved view: its text, with the saved {layer, unit, t} unless `select` names others (a reload's hash). */
  open(select = {}) {
    const s = this._saved;
    const pick = { layer: select.layer ?? s.select.layer, unit: select.unit ?? s.select.unit, t: select.t ?? s.select.t };
    const win = select.win ?? s.select.win ?? null; // a long text's window: {start, size}
    this._state.setCards([s.card]);
    this._state.setModel(s.card.id, { text: s.text, layer: pick.layer, unit: pick.unit, t: pick.t, win });
  }

  _onChange(changed) {
    const s = this._state;
    if (changed.has("model") || changed.has("text")) {
      if (s.text !== this._saved.text) return;
      queueMicrotask(() => s.applyEdit({ ...this._reply, focus: this._focusOf(s.layer, s.unit) }, s.text));
    } else if (changed.has("unit") || changed.has("layer")) {
      queueMicrotask(() => s.applyFocus(this._focusOf(s.layer, s.unit)));
    }
  }

  /** Unit `unit` of layer `layer`'s lines over the whole text, as a focus reply. */
  _focusOf(layer, unit) {
    const lines = {};
    for (const [name, col] of Object.entries(this._lines[layer] || {})) {
      if (unit >= col.units) continue;
      const T = col.data.length / col.units;
      const out = new Array(T);
      for (let t = 0; t < T; t++) out[t] = col.data[t * col.units + unit];
      lines[name] = out;
    }
    return { layer, unit, from: 0, lines };
  }
}
