/**
 * Work a view can put off: a panel off screen does its work when it comes on screen, and on screen in an idle
 * callback (after the frame a scrub step draws), so the diagram, the cursors and the numbers a person is looking
 * at are never kept waiting by a panel below the fold. Only the newest request runs (a scrub of ten steps while
 * the panel is away costs one update when it is back).
 *
 *     const lazy = new Lazy(panel);   lazy.run(() => this._ask());   // instead of this._ask()
 */

/** Longest an on-screen panel's work waits for an idle moment (ms): a busy page still updates it this often. */
export const IDLE_TIMEOUT_MS = 200;

/** Call fn when the page is idle (requestIdleCallback, or a timeout where there is none); returns a cancel. */
export function whenIdle(fn, timeout = IDLE_TIMEOUT_MS) {
  if (typeof requestIdleCallback === "function") {
    const id = requestIdleCallback(fn, { timeout });
    return () => cancelIdleCallback(id);
  }
  const id = setTimeout(fn, 0);
  return () => clearTimeout(id);
}

/** One element's deferred work (IntersectionObserver for "on screen"). */
export class Lazy {
  constructor(element) {
    this._work = null;
    this._cancel = null;
    this._visible = true; // until the observer says otherwise (its first report comes within a frame)
    if (typeof IntersectionObserver === "function") {
      new IntersectionObserver((entries) => {
        this._visible = entries[entries.length - 1].isIntersecting;
        if (this._visible && this._work) this._schedule();
      }).observe(element);
    }
  }

  /** Do fn soon: in an idle callback while the element is on screen, else once it is (replacing any waiting fn). */
  run(fn) {
    this._work = fn;
    if (this._visible) this._schedule();
  }

  /** Forget the waiting work (what it would show is gone). */
  cancel() {
    this._work = null;
    this._cancel?.();
    this._cancel = null;
  }

  _schedule() {
    if (this._cancel) return; // one idle callback at a time; it runs the newest work
    this._cancel = whenIdle(() => {
      this._cancel = null;
      const fn = this._work;
      this._work = null;
      if (fn && this._visible) fn();
      else if (fn) this._work = fn; // went off screen meanwhile: wait for it to come back
    });
  }
}
