// SVG drawn by hand: a line chart over time and a stage graph, no library.

const NS = "http://www.w3.org/2000/svg";

export function el(name, attrs = {}, text = undefined) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// A line of {t (epoch ms), v} points, with the latest value, the range and the time span.
export function lineChart(points, { width = 1000, height = 220, label = "" } = {}) {
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img", "aria-label": label });
  const pad = { left: 56, right: 12, top: 14, bottom: 24 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  svg.append(el("rect", { x: pad.left, y: pad.top, width: w, height: h, class: "plot" }));
  if (points.length === 0) {
    svg.append(el("text", { x: width / 2, y: height / 2, class: "empty", "text-anchor": "middle" }, "no samples yet"));
    return svg;
  }
  const t0 = points[0].t;
  const t1 = Math.max(points[points.length - 1].t, t0 + 1);
  const vmax = Math.max(1, ...points.map((p) => p.v));
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * w;
  const y = (v) => pad.top + h - (v / vmax) * h;
  for (const v of [0, vmax / 2, vmax]) {
    svg.append(el("line", { x1: pad.left, x2: pad.left + w, y1: y(v), y2: y(v), class: "grid" }));
    svg.append(el("text", { x: pad.left - 6, y: y(v) + 4, "text-anchor": "end" }, formatNumber(v)));
  }
  svg.append(el("text", { x: pad.left, y: height - 6 }, new Date(t0).toLocaleTimeString()));
  svg.append(el("text", { x: pad.left + w, y: height - 6, "text-anchor": "end" }, new Date(t1).toLocaleTimeString()));
  const path = points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
  svg.append(el("polyline", { points: path, class: "series", "data-points": points.length }));
  return svg;
}

// Stages in columns by depth (longest path from a source), edges from each input; each node
// shows its counts. `stages`: [{name, stageName, role, inputs, recordsIn, recordsOut, rejected}].
export function stageGraph(stages) {
  const depth = {};
  for (const s of stages) depth[s.name] = s.inputs.length ? 1 + Math.max(...s.inputs.map((i) => depth[i] ?? 0)) : 0;
  const columns = [];
  for (const s of stages) (columns[depth[s.name]] ??= []).push(s);
  const longest = Math.max(...stages.map((s) => Math.max(s.name.length, s.stageName.length)));
  const nodeW = Math.max(180, Math.ceil(longest * 7.4) + 16), nodeH = 74, gapX = 46, gapY = 18;
  const rows = Math.max(...columns.map((c) => c.length));
  const width = columns.length * (nodeW + gapX) - gapX + 20;
  const height = rows * (nodeH + gapY) - gapY + 20;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, class: "dag", role: "img", "aria-label": "stage graph" });
  const at = {};
  columns.forEach((column, c) =>
    column.forEach((s, r) => {
      at[s.name] = { x: 10 + c * (nodeW + gapX), y: 10 + r * (nodeH + gapY) + ((rows - column.length) * (nodeH + gapY)) / 2 };
    }),
  );
  for (const s of stages) {
    for (const input of s.inputs) {
      const a = at[input], b = at[s.name];
      const x1 = a.x + nodeW, y1 = a.y + nodeH / 2, x2 = b.x, y2 = b.y + nodeH / 2, mid = (x1 + x2) / 2;
      svg.append(el("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: "edge" }));
    }
  }
  for (const s of stages) {
    const { x, y } = at[s.name];
    const g = el("g", { class: `stage ${s.role}${s.rejected ? " rejecting" : ""}`, "data-stage": s.name });
    g.append(el("rect", { x, y, width: nodeW, height: nodeH, rx: 6 }));
    g.append(el("text", { x: x + 8, y: y + 18, class: "name" }, s.name));
    g.append(el("text", { x: x + 8, y: y + 34, class: "type" }, s.stageName));
    g.append(el("text", { x: x + 8, y: y + 52 }, `in ${formatNumber(s.recordsIn)} · out ${formatNumber(s.recordsOut)}`));
    g.append(el("text", { x: x + 8, y: y + 67, class: "rejected" }, `rejected ${formatNumber(s.rejected)}`));
    svg.append(g);
  }
  return svg;
}

export function formatNumber(v) {
  if (v === null || v === undefined) return "—";
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
