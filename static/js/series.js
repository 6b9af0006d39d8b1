/**
 * The series a vector model reads, drawn above the heatmaps: a line plot a feature (the values the server
 * read from the CSV), the predictions of a values head as curves beside them (and the targets where the
 * server sends them), and the cursor at step t. Hidden for text models.
 *
 * Every number drawn comes from the trace the server sent (state.trace.inputs / values / targets): this
 * view never parses the CSV the person edits. A new trace redraws the lines (plotly's react); a new t only
 * moves the cursor (a relayout of one shape): the cheap path stays cheap.
 *
 * For tests: the root's data-steps (steps drawn), data-curves (the names of the curves drawn, comma-separated).
 */

import { CONFIG, FONT, axis, chartColours, hasPlotly, onColourScheme, plotlyReady } from "./plotting.js";

// colours (plotting.js chartColours()): the features' lines in turn (series), the predictions (unit), the targets
/** Height of one row of the plot (a feature, or the predictions), in CSS pixels. */
const ROW_PX = 110;
/** Most features drawn, each in its own row (the rest are listed, not drawn). */
const MAX_ROWS = 6;

export class SeriesView {
  /** els: {root (the panel), plot (the chart's div), note (a line of words)} */
  constructor(els, state) {
    this.els = els;
    this.state = state;
    this._drawnVersion = -1;
    this._rows = 0;
    state.subscribe((changed) => this._onChange(changed));
    plotlyReady().then(() => this._draw(), () => {});
    onColourScheme(() => this._draw());
  }

  _onChange(changed) {
    const s = this.state;
    if (changed.has("model")) this.els.root.hidden = s.card?.input !== "vectors";
    if (this.els.root.hidden) return;
    if (changed.has("trace") || changed.has("model")) this._draw();
    else if (changed.has("t")) this._moveCursor();
  }

  /** The rows to draw: each feature, then the predictions (in the feature's row when there is one feature). */
  _curves() {
    const tr = this.state.trace;
    const T = tr.T;
    const steps = Array.from({ length: T }, (_, t) => t);
    const names = tr.inputs?.names || [];
    const rows = tr.inputs?.rows || [];
    const D = rows.length ? rows[0].length : 0;
    const shown = Math.min(D, MAX_ROWS);
    const curves = [];
    for (let d = 0; d < shown; d++) {
      curves.push({
        name: names[d] || `x${d}`,
        row: d,
        x: steps,
        y: rows.slice(0, T).map((r) => r[d]),
        line: { color: chartColours().series[d % chartColours().series.length], width: 1.5 },
      });
    }
    const values = tr.values; // a Series of K per step (row(t)), or null
    const K = values ? values.width : 0;
    const sameRow = D === 1 && K === 1; // a forecaster: the forecast beside the series, in its units
    const column = (series, k) => steps.map((t) => series.row(t)[k]);
    for (let k = 0; k < K; k++) {
      const name = tr.output?.labels?.[k] && K > 1 ? `predicted ${tr.output.labels[k]}` : K > 1 ? `predicted ${k}` : "predicted";
      curves.push({ name, row: sameRow ? 0 : shown, x: steps, y: column(values, k), line: { color: chartColours().unit, width: 1.5, dash: "dot" } });
    }
    const targets = tr.targets; // what the values should be, NaN where not known (plotly leaves a gap)
    const T_K = targets ? Math.min(K, targets.width) : 0;
    for (let k = 0; k < T_K; k++) {
      curves.push({
        name: K > 1 ? `target ${k}` : "target",
        row: sameRow ? 0 : shown,
        x: steps,
        y: column(targets, k).map((v) => (Number.isNaN(v) ? null : v)),
        line: { color: chartColours().target, width: 1, dash: "dash" },
      });
    }
    const rowsUsed = shown + (K && !sameRow ? 1 : 0);
    const note = D > MAX_ROWS ? `The first ${MAX_ROWS} of ${D} features are drawn.` : "";
    return { curves, rowsUsed: Math.max(rowsUsed, 1), note };
  }

  _draw() {
    const { plot, root, note } = this.els;
    const s = this.state;
    if (root.hidden || !hasPlotly() || !s.T) {
      if (!s.T) {
        root.dataset.steps = "0";
        root.dataset.curves = "";
      }
      return;
    }
    const { curves, rowsUsed, note: words } = this._curves();
    note.textContent = words;
    const gap = 0.08;
    const h = (1 - gap * (rowsUsed - 1)) / rowsUsed;
    const layout = {
      font: FONT,
      height: ROW_PX * rowsUsed + 40,
      margin: { l: 56, r: 12, t: 8, b: 40 },
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 11 } },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "rgba(0,0,0,0)",
      // below the lowest row, whatever the rows (anchored to the first y axis it would sit under the top row)
      xaxis: axis({ range: [-0.5, Math.max(s.T - 0.5, 0.5)], anchor: "free", position: 0, title: { text: "step t", font: { size: 11 } } }),
      shapes: [this._cursor()],
    };
    for (let r = 0; r < rowsUsed; r++) {
      const key = r === 0 ? "yaxis" : `yaxis${r + 1}`;
      const top = 1 - r * (h + gap);
      layout[key] = axis({ domain: [Math.max(top - h, 0), top], showgrid: true, gridcolor: chartColours().grid });
    }
    const data = curves.map((c) => ({
      type: "scatter",
      mode: c.mode || "lines",
      name: c.name,
      x: c.x,
      y: c.y,
      yaxis: c.row === 0 ? "y" : `y${c.row + 1}`,
      ...(c.line ? { line: c.line } : {}),
      ...(c.marker ? { marker: c.marker } : {}),
      hovertemplate: `${c.name}: %{y:.4g} at t = %{x}<extra></extra>`,
    }));
    window.Plotly.react(plot, data, layout, CONFIG);
    this._rows = rowsUsed;
    this._drawnVersion = s.trace.version;
    root.dataset.steps = String(s.T);
    root.dataset.curves = curves.map((c) => c.name).join(",");
  }

  /** The cursor: a vertical line at step t across every row. */
  _cursor() {
    const t = this.state.t;
    return { type: "line", xref: "x", yref: "paper", x0: t, x1: t, y0: 0, y1: 1, line: { color: chartColours().cursor, width: 1 } };
  }

  _moveCursor() {
    if (!hasPlotly() || this._drawnVersion < 0) return;
    window.Plotly.relayout(this.els.plot, { shapes: [this._cursor()] });
    this.els.root.dataset.t = String(this.state.t);
  }
}
