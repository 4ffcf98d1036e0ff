// The status page: reads ./status every 10 s (`?refresh=N` for another period) and draws the
// allocation chart (inline SVG) and the tables from it. Read-only: it never sends anything but
// GET. Text goes in through textContent only, so a sleeve name can never become markup.
"use strict";

(function () {
  const REFRESH_SECONDS = Math.max(1, Number(new URLSearchParams(location.search).get("refresh")) || 10);
  const SVG = "http://www.w3.org/2000/svg";
  const WIDTH = 720;
  const LABEL_RIGHT = 150; // sleeve names end here
  const PLOT_LEFT = 160;
  const PLOT_RIGHT = 560;
  const ROW = 44;
  const TOP = 26; // room for the axis labels

  const num = (value) => (value === null || value === undefined || value === "" ? NaN : Number(value));
  const percent = (value) => (Number.isFinite(value) ? (value * 100).toFixed(2) + " %" : "–");
  const points = (value) =>
    Number.isFinite(value) ? (value > 0 ? "+" : "") + (value * 100).toFixed(2) + " pp" : "–";

  function setText(id, value) {
    document.getElementById(id).textContent = value;
  }

  function svg(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function cell(row, value, className) {
    const td = document.createElement("td");
    td.textContent = value;
    if (className) td.className = className;
    row.appendChild(td);
  }

  function rows(status) {
    return (status.sleeves || []).map((s) => {
      const current = num(s.current);
      const target = num(s.target);
      const band = num(s.band);
      const drift = s.drift !== undefined ? num(s.drift) : current - target;
      const out = s.out_of_band !== undefined ? Boolean(s.out_of_band) : Math.abs(drift) > band;
      return { sleeve: String(s.sleeve), current, target, band, drift, out };
    });
  }

  function renderSummary(status) {
    setText("portfolio", status.portfolio ? "· " + status.portfolio : "");
    setText("mode", status.mode || "–");
    const state = document.getElementById("trading-state");
    state.textContent = status.trading_state || "–";
    state.className = "state state-" + String(status.trading_state || "unknown").toLowerCase();
    const nav = num(status.nav);
    setText(
      "nav",
      Number.isFinite(nav)
        ? nav.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }) +
            (status.quote_currency ? " " + status.quote_currency : "")
        : "–",
    );
    const health = status.health || {};
    const healthNode = document.getElementById("health");
    healthNode.textContent = health.ok ? "ok" : "unhealthy: " + (health.reason || "unknown");
    healthNode.className = health.ok ? "ok" : "bad";
    const last = status.last_cycle;
    setText(
      "last-cycle",
      last
        ? [last.outcome, last.at ? "at " + last.at : "", last.cycle_id ? "(" + last.cycle_id + ")" : ""]
            .filter(Boolean)
            .join(" ") + (last.reason ? ": " + last.reason : "")
        : "none yet",
    );
  }

  function renderTable(sleeves) {
    const body = document.querySelector("#drift tbody");
    body.replaceChildren();
    for (const s of sleeves) {
      const row = document.createElement("tr");
      row.dataset.sleeve = s.sleeve;
      if (s.out) row.className = "out";
      cell(row, s.sleeve, "name");
      cell(row, percent(s.current), "num current");
      cell(row, percent(s.target), "num target");
      cell(row, points(s.drift), "num drift");
      cell(row, Number.isFinite(s.band) ? "±" + (s.band * 100).toFixed(2) + " pp" : "–", "num band");
      cell(row, s.out ? "out of band" : "in band", "status");
      body.appendChild(row);
    }
  }

  function ticks(lo, hi) {
    const span = hi - lo;
    const step = span > 1 ? 0.25 : span > 0.5 ? 0.1 : span > 0.2 ? 0.05 : 0.02;
    const result = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) result.push(Number(t.toFixed(6)));
    return result;
  }

  function renderChart(sleeves) {
    const chart = document.getElementById("chart");
    for (const node of Array.from(chart.childNodes)) if (node.nodeName !== "title") chart.removeChild(node);
    const height = TOP + Math.max(1, sleeves.length) * ROW + 4;
    chart.setAttribute("viewBox", `0 0 ${WIDTH} ${height}`);
    if (!sleeves.length) {
      chart.appendChild(svg("text", { x: PLOT_LEFT, y: TOP + 20, class: "empty" }, "no drift report yet"));
      return;
    }
    let lo = 0;
    let hi = 0;
    for (const s of sleeves) {
      for (const v of [s.current, s.target - s.band, s.target + s.band, s.target]) {
        if (Number.isFinite(v)) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
      }
    }
    if (hi - lo < 1e-9) hi = lo + 1;
    const x = (v) => PLOT_LEFT + ((v - lo) / (hi - lo)) * (PLOT_RIGHT - PLOT_LEFT);
    for (const t of ticks(lo, hi)) {
      chart.appendChild(svg("line", { x1: x(t), x2: x(t), y1: TOP - 4, y2: height - 4, class: t === 0 ? "zero" : "grid" }));
      chart.appendChild(svg("text", { x: x(t), y: TOP - 10, class: "tick" }, (t * 100).toFixed(0) + " %"));
    }
    sleeves.forEach((s, i) => {
      const y = TOP + i * ROW;
      const group = svg("g", { "data-sleeve": s.sleeve, class: s.out ? "row out" : "row" });
      group.appendChild(svg("text", { x: LABEL_RIGHT, y: y + ROW / 2 + 4, class: "label" }, s.sleeve));
      if (Number.isFinite(s.band) && Number.isFinite(s.target)) {
        const left = x(s.target - s.band);
        group.appendChild(
          svg("rect", { x: left, y: y + 4, width: x(s.target + s.band) - left, height: ROW - 12, class: "band", "data-value": s.band }),
        );
      }
      if (Number.isFinite(s.current)) {
        const from = Math.min(x(0), x(s.current));
        group.appendChild(
          svg("rect", { x: from, y: y + 12, width: Math.abs(x(s.current) - x(0)), height: ROW - 28, class: "current", "data-value": s.current }),
        );
      }
      if (Number.isFinite(s.target)) {
        group.appendChild(svg("line", { x1: x(s.target), x2: x(s.target), y1: y + 2, y2: y + ROW - 6, class: "target", "data-value": s.target }));
      }
      group.appendChild(
        svg("text", { x: PLOT_RIGHT + 10, y: y + ROW / 2 + 4, class: "value" }, `${percent(s.current)} of ${percent(s.target)}`),
      );
      chart.appendChild(group);
    });
  }

  function renderRecent(recent) {
    const body = document.querySelector("#recent tbody");
    body.replaceChildren();
    for (const entry of recent || []) {
      const row = document.createElement("tr");
      cell(row, String(entry.time || ""), "time");
      cell(row, String(entry.cycle_id || ""), "cycle");
      cell(row, String(entry.event || ""), "event");
      cell(row, String(entry.summary || ""), "summary");
      body.appendChild(row);
    }
  }

  function render(status) {
    const sleeves = rows(status);
    renderSummary(status);
    renderChart(sleeves);
    renderTable(sleeves);
    renderRecent(status.recent);
    const updated = document.getElementById("updated");
    updated.textContent = new Date().toISOString().replace("T", " ").slice(0, 19) + " UTC";
    document.body.dataset.rendered = "true";
  }

  async function refresh() {
    try {
      const response = await fetch("status", { cache: "no-store", headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      render(await response.json());
      setText("error", "");
    } catch (error) {
      setText("error", "status unavailable: " + error.message);
    } finally {
      setTimeout(refresh, REFRESH_SECONDS * 1000);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    setText("refresh-seconds", String(REFRESH_SECONDS));
    refresh();
  });
})();
