// The status page: reads ./status and ./history?window=… every 10 s (`?refresh=N` for another
// period) and draws the charts (hand-made inline SVG) and tables from them. Numbers arrive
// formatted by the bot (`*_text`); the page only lays them out. Every read is a GET; the only
// writes are the Halt / Resume buttons, which POST to ./halt and ./resume with the operator's
// bearer token after a confirmation, exactly like curl would. The token lives in the input
// field only, never in storage. Text goes in through textContent only, so nothing read from
// the bot can become markup.
"use strict";

(function () {
  const REFRESH_SECONDS = Math.max(1, Number(new URLSearchParams(location.search).get("refresh")) || 10);
  // In a process of several portfolios, `?portfolio=NAME` shows (and halts) that one.
  const PORTFOLIO = new URLSearchParams(location.search).get("portfolio");
  const scoped = (path) =>
    PORTFOLIO ? path + (path.includes("?") ? "&" : "?") + "portfolio=" + encodeURIComponent(PORTFOLIO) : path;
  const SVG = "http://www.w3.org/2000/svg";
  const DASH = "–";
  let windowName = "24h";
  let lastStatus = null;
  let lastHistory = null;

  const num = (value) => (value === null || value === undefined || value === "" ? NaN : Number(value));
  // Like bot.core.human: two decimals, and a value that rounds to zero is never "-0.00".
  const fixed = (value, places, sign) => {
    const text = Number((value * 100).toFixed(places)) === 0 ? (0).toFixed(places) : (value * 100).toFixed(places);
    return (sign && Number(text) >= 0 ? "+" : "") + text;
  };
  const percent = (value) => (Number.isFinite(value) ? fixed(value, 2, false) + "%" : DASH);
  const pp = (value) => fixed(value, 2, true) + " pp";
  const thousands = (value, places) =>
    value.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });

  function byId(id) {
    return document.getElementById(id);
  }

  function setText(id, value) {
    byId(id).textContent = value;
  }

  function svg(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function element(name, className, text) {
    const node = document.createElement(name);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function cell(row, value, className, title) {
    const td = element("td", className, value === null || value === undefined || value === "" ? DASH : String(value));
    if (title) td.title = title;
    row.appendChild(td);
    return td;
  }

  function fillTable(selector, items, build) {
    const body = document.querySelector(selector + " tbody");
    body.replaceChildren();
    if (!items.length) {
      const row = element("tr", "empty");
      const td = cell(row, "none yet", "muted");
      td.colSpan = document.querySelectorAll(selector + " thead th").length;
      body.appendChild(row);
      return;
    }
    for (const item of items) body.appendChild(build(item));
  }

  // A time as a person scans a column: the clock alone for today (UTC), else the date too.
  function when(text) {
    if (!text) return DASH;
    const moment = new Date(text);
    if (Number.isNaN(moment.getTime())) return String(text);
    const iso = moment.toISOString();
    const today = new Date().toISOString().slice(0, 10);
    return iso.slice(0, 10) === today ? iso.slice(11, 19) : iso.slice(5, 10) + " " + iso.slice(11, 16);
  }

  // -- summary and trading state -------------------------------------------------------------

  function renderSummary(status) {
    setText("portfolio", status.portfolio ? "· " + status.portfolio : "");
    const mode = byId("mode");
    mode.textContent = status.mode || "";
    mode.className = "badge mode-" + String(status.mode || "").replace(/[^a-z-]/g, "");
    setText("nav", status.nav_text || DASH);
    const state = byId("trading-state");
    state.textContent = status.trading_state || DASH;
    state.className = "badge state-" + String(status.trading_state || "unknown").toLowerCase();
    setText("trading-reason", status.trading_reason || "");
    const health = status.health || {};
    const healthNode = byId("health");
    healthNode.textContent = health.ok ? "ok" : "unhealthy: " + (health.reason || "unknown");
    healthNode.className = health.ok ? "ok" : "bad";
    const last = status.last_cycle;
    setText(
      "last-cycle",
      last ? [last.outcome, when(last.at)].join(" at ") + (last.reason ? ": " + last.reason : "") : "none yet",
    );
    byId("control-form").hidden = !status.writes_enabled;
    byId("control-off").hidden = Boolean(status.writes_enabled);
    byId("halt").disabled = status.trading_state === "HALTED";
    byId("resume").disabled = status.trading_state === "ACTIVE";
    setText("as-of", status.as_of ? "read at " + when(status.as_of) + " UTC" : "");
  }

  async function control(action) {
    const token = byId("token").value.trim();
    const result = byId("control-result");
    if (!token) {
      result.textContent = "enter the token first";
      result.className = "bad";
      return;
    }
    const reason = byId("reason").value.trim() || "operator " + action + " from the status page";
    const name = lastStatus ? lastStatus.portfolio : "this portfolio";
    if (!window.confirm(action === "halt" ? `Halt all trading of ${name}?` : `Resume trading of ${name}?`)) return;
    result.textContent = action + "…";
    result.className = "";
    try {
      const response = await fetch(scoped(action), {
        method: "POST",
        cache: "no-store",
        headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
        body: JSON.stringify({ reason }),
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) throw new Error(body.error || "HTTP " + response.status);
      result.textContent = action + " accepted: " + body.reason;
      result.className = "ok";
    } catch (error) {
      result.textContent = action + " refused: " + error.message;
      result.className = "bad";
    }
    refresh(false);
  }

  // -- charts ----------------------------------------------------------------------------------

  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function valueTicks(lo, hi, count) {
    const step = niceStep(hi - lo, count);
    const ticks = [];
    for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
    return { ticks, step };
  }

  function timeTicks(start, end, count) {
    const span = end - start;
    const steps = [1e3, 2e3, 5e3, 10e3, 30e3, 60e3, 300e3, 900e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3];
    const step = steps.find((s) => span / s <= count) || steps[steps.length - 1];
    const ticks = [];
    for (let t = Math.ceil(start / step) * step; t <= end; t += step) ticks.push(t);
    return { ticks, step };
  }

  function timeLabel(t, step) {
    const iso = new Date(t).toISOString();
    if (step >= 86400e3 || (step >= 6 * 3600e3 && iso.slice(11, 16) === "00:00")) return iso.slice(5, 10);
    return step < 60e3 ? iso.slice(11, 19) : iso.slice(11, 16);
  }

  // A line chart over time: axes, ticks with their values (data-value), an optional band
  // around zero, rebalance markers and the line itself (data-points: the values drawn).
  function lineChart(node, options) {
    const width = Math.max(280, Math.round(node.getBoundingClientRect().width || 720));
    const height = options.height;
    const left = options.left;
    const right = width - 12;
    const top = 10;
    const bottom = height - 22;
    node.setAttribute("viewBox", `0 0 ${width} ${height}`);
    node.setAttribute("height", String(height));
    node.replaceChildren();
    const { start, end, points } = options;
    if (!points.length) {
      node.appendChild(svg("text", { x: left, y: top + 24, class: "empty" }, options.empty));
      return;
    }
    let lo = Math.min(...points.map((p) => p.value));
    let hi = Math.max(...points.map((p) => p.value));
    for (const b of options.bands || []) {
      lo = Math.min(lo, -b.band);
      hi = Math.max(hi, b.band);
    }
    if (options.zero) {
      lo = Math.min(lo, 0);
      hi = Math.max(hi, 0);
    }
    if (hi - lo < 1e-12) {
      const pad = Math.abs(hi) * 0.001 || 1;
      lo -= pad;
      hi += pad;
    }
    const margin = (hi - lo) * 0.08;
    const { ticks } = valueTicks(lo - margin, hi + margin, options.ticks || 4);
    lo = Math.min(lo - margin, ticks[0]);
    hi = Math.max(hi + margin, ticks[ticks.length - 1]);
    const x = (t) => left + ((t - start) / (end - start)) * (right - left);
    const y = (v) => bottom - ((v - lo) / (hi - lo)) * (bottom - top);
    for (const t of ticks) {
      node.appendChild(svg("line", { x1: left, x2: right, y1: y(t), y2: y(t), class: t === 0 ? "zero" : "grid", "data-value": t }));
      node.appendChild(svg("text", { x: left - 6, y: y(t) + 4, class: "tick y" }, options.label(t)));
    }
    const time = timeTicks(start, end, Math.max(2, Math.floor((right - left) / 90)));
    for (const t of time.ticks) {
      node.appendChild(svg("line", { x1: x(t), x2: x(t), y1: bottom, y2: bottom + 4, class: "axis" }));
      node.appendChild(svg("text", { x: x(t), y: height - 6, class: "tick x" }, timeLabel(t, time.step)));
    }
    node.appendChild(svg("line", { x1: left, x2: right, y1: bottom, y2: bottom, class: "axis" }));
    for (const b of options.bands || []) {
      const from = x(Math.max(start, b.from));
      const to = x(Math.min(end, b.to));
      node.appendChild(
        svg("rect", { x: from, y: y(b.band), width: Math.max(1, to - from), height: y(-b.band) - y(b.band), class: "band", "data-value": b.band }),
      );
    }
    for (const t of options.rebalances || []) {
      if (t >= start && t <= end) node.appendChild(svg("line", { x1: x(t), x2: x(t), y1: top, y2: bottom, class: "rebalance" }));
    }
    const d = points.map((p, i) => (i ? "L" : "M") + x(p.time).toFixed(2) + " " + y(p.value).toFixed(2)).join(" ");
    node.appendChild(svg("path", { d, class: "line", "data-points": JSON.stringify(points.map((p) => [p.time, p.value])) }));
    const last = points[points.length - 1];
    node.appendChild(svg("circle", { cx: x(last.time), cy: y(last.value), r: 3, class: "last" }));
  }

  // Band segments of a sleeve: the band may change with its target over time.
  function bandsOf(points, end) {
    const bands = [];
    points.forEach((p, i) => {
      const to = i + 1 < points.length ? points[i + 1].time : end;
      const previous = bands[bands.length - 1];
      if (previous && previous.band === p.band) previous.to = to;
      else bands.push({ from: p.time, to, band: p.band });
    });
    return bands;
  }

  // The window, or less when the history is shorter: a young bot's few cycles fill the chart.
  function domain(history) {
    const end = Date.parse(history.end);
    const times = history.nav.map((p) => Date.parse(p.time));
    for (const series of history.sleeves) for (const p of series.points) times.push(Date.parse(p.time));
    const first = times.length ? Math.min(...times) : Date.parse(history.start);
    const pad = 1e3 + (end - first) * 0.04;
    return { start: Math.max(Date.parse(history.start), first - pad), end };
  }

  function renderHistory(history) {
    const { start, end } = domain(history);
    const rebalances = history.rebalances.map((t) => Date.parse(t));
    const quote = history.quote_currency;
    const navPoints = history.nav.map((p) => ({ time: Date.parse(p.time), value: p.nav }));
    const span = navPoints.length ? Math.max(...navPoints.map((p) => p.value)) - Math.min(...navPoints.map((p) => p.value)) : 0;
    const places = span >= 50 ? 0 : 2;
    lineChart(byId("nav-chart"), {
      start, end, rebalances, points: navPoints, height: 200, left: 84,
      label: (v) => thousands(v, places),
      empty: "no valuation in this window yet",
    });
    byId("nav-chart").setAttribute("aria-label", `NAV in ${quote} over the last ${history.window}`);
    const holder = byId("drift-charts");
    const names = history.sleeves.map((s) => s.sleeve);
    for (const figure of Array.from(holder.children)) if (!names.includes(figure.dataset.sleeve)) figure.remove();
    for (const series of history.sleeves) {
      let figure = holder.querySelector(`figure[data-sleeve="${CSS.escape(series.sleeve)}"]`);
      if (!figure) {
        figure = element("figure");
        figure.dataset.sleeve = series.sleeve;
        figure.appendChild(element("figcaption"));
        figure.appendChild(svg("svg", { class: "chart drift-chart", role: "img" }));
        holder.appendChild(figure);
      }
      const points = series.points.map((p) => ({ time: Date.parse(p.time), value: p.current - p.target, band: p.band }));
      const last = series.points[series.points.length - 1];
      const caption = figure.querySelector("figcaption");
      caption.replaceChildren(element("strong", "", series.sleeve));
      if (last) {
        const drift = last.current - last.target;
        const out = Math.abs(drift) > last.band;
        caption.appendChild(
          element("span", out ? "bad" : "muted", ` ${percent(last.current)} of ${percent(last.target)}, drift ${pp(drift)} (band ±${fixed(last.band, 2, false)} pp)`),
        );
      }
      lineChart(figure.querySelector("svg"), {
        start, end, rebalances, points, height: 130, left: 56, zero: true, ticks: 3,
        bands: bandsOf(points, end),
        label: (v) => fixed(v, Math.abs(v) < 0.01 && v !== 0 ? 2 : 1, v !== 0) + " pp",
        empty: "no valuation in this window yet",
      });
    }
    const traded = history.traded;
    setText(
      "traded",
      `Last ${history.window}: ${traded.orders} order${traded.orders === 1 ? "" : "s"}, ${traded.fills} fill${traded.fills === 1 ? "" : "s"}, ` +
        `turnover ${traded.turnover_text}, fees ${traded.fees_text}, ${history.rebalances.length} rebalance${history.rebalances.length === 1 ? "" : "s"}.`,
    );
  }

  // The allocation now: each sleeve's weight as a bar from zero, its band and target, to scale.
  function renderAllocation(sleeves) {
    const chart = byId("chart");
    const width = Math.max(320, Math.round(chart.getBoundingClientRect().width || 720));
    const narrow = width < 560;
    const labelRight = narrow ? 110 : 150;
    const plotLeft = labelRight + 10;
    const plotRight = width - (narrow ? 12 : 160);
    const row = 44;
    const top = 26;
    for (const node of Array.from(chart.childNodes)) if (node.nodeName !== "title") chart.removeChild(node);
    const height = top + Math.max(1, sleeves.length) * row + 4;
    chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
    chart.setAttribute("height", String(height));
    if (!sleeves.length) {
      chart.appendChild(svg("text", { x: plotLeft, y: top + 20, class: "empty" }, "no drift report yet"));
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
    const x = (v) => plotLeft + ((v - lo) / (hi - lo)) * (plotRight - plotLeft);
    const { ticks } = valueTicks(lo, hi, narrow ? 3 : 5);
    for (const t of ticks) {
      if (t < lo - 1e-9 || t > hi + 1e-9) continue;
      chart.appendChild(svg("line", { x1: x(t), x2: x(t), y1: top - 4, y2: height - 4, class: t === 0 ? "zero" : "grid" }));
      chart.appendChild(svg("text", { x: x(t), y: top - 10, class: "tick x" }, (t * 100).toFixed(0) + "%"));
    }
    sleeves.forEach((s, i) => {
      const y = top + i * row;
      const group = svg("g", { "data-sleeve": s.sleeve, class: s.out ? "row out" : "row" });
      group.appendChild(svg("text", { x: labelRight, y: y + row / 2 + 4, class: "label" }, s.sleeve));
      const left = x(s.target - s.band);
      group.appendChild(svg("rect", { x: left, y: y + 4, width: x(s.target + s.band) - left, height: row - 12, class: "band", "data-value": s.band }));
      const from = Math.min(x(0), x(s.current));
      group.appendChild(svg("rect", { x: from, y: y + 12, width: Math.abs(x(s.current) - x(0)), height: row - 28, class: "current", "data-value": s.current }));
      group.appendChild(svg("line", { x1: x(s.target), x2: x(s.target), y1: y + 2, y2: y + row - 6, class: "target", "data-value": s.target }));
      if (!narrow) group.appendChild(svg("text", { x: plotRight + 10, y: y + row / 2 + 4, class: "value" }, `${s.current_text} of ${s.target_text}`));
      chart.appendChild(group);
    });
  }

  // -- tables ----------------------------------------------------------------------------------

  function sleeveRows(status) {
    return (status.sleeves || []).map((s) => ({
      ...s,
      current: num(s.current),
      target: num(s.target),
      band: num(s.band),
      out: Boolean(s.out_of_band),
    }));
  }

  function renderSleeves(sleeves) {
    fillTable("#drift", sleeves, (s) => {
      const row = element("tr", s.out ? "out" : "");
      row.dataset.sleeve = s.sleeve;
      cell(row, s.sleeve, "name");
      cell(row, s.value_text, "num value wide");
      cell(row, s.current_text, "num current");
      cell(row, s.target_text, "num target");
      cell(row, s.drift_text, "num drift");
      cell(row, s.band_text, "num band");
      cell(row, s.out ? "out of band" : "in band", "status");
      return row;
    });
  }

  function renderFunding(lines) {
    fillTable("#funding", lines, (f) => {
      const row = element("tr");
      cell(row, f.sleeve, "name");
      cell(row, f.symbol, "symbol");
      cell(row, f.rate_text, "num rate");
      cell(row, f.annual_rate_text, "num");
      cell(row, Number(f.target_notional).toLocaleString("en-US", { maximumFractionDigits: 2 }), "num wide");
      cell(row, f.annual_cost_text, "num cost");
      return row;
    });
  }

  function accountCard(account) {
    const card = element("article", "account");
    card.dataset.account = account.name;
    const head = element("header");
    const kind = account.market_type === "spot" ? "spot wallet" : "futures wallet (" + (account.margin_asset || "") + " margin)";
    head.appendChild(element("h3", "", account.name));
    head.appendChild(element("span", "muted", `${account.exchange} · ${kind}`));
    head.appendChild(element("span", "account-value", account.value_text));
    card.appendChild(head);
    if (account.market_type !== "spot") {
      const wallet = element("dl", "wallet");
      for (const [label, value] of [
        ["Wallet balance", account.wallet_balance_text],
        ["Unrealized PnL", account.unrealized_pnl_text],
        ["Available margin", account.available_margin_text],
      ]) {
        const item = element("div");
        item.appendChild(element("dt", "", label));
        item.appendChild(element("dd", "", value));
        wallet.appendChild(item);
      }
      card.appendChild(wallet);
    }
    const holder = element("div", "scroll");
    const table = element("table", "positions");
    const head2 = element("thead");
    // Coins in the account's funding or Earn wallets: a column only where the account has some.
    const outside = account.market_type === "spot" && account.holdings.some((h) => h.outside_text !== "");
    const columns =
      account.market_type === "spot"
        ? [["Asset", ""], ["Amount", "num"], ["In orders", "num wide"], ...(outside ? [["In Earn, funding", "num wide"]] : []), ["Price", "num wide"], ["Value", "num"], ["Share", "num"]]
        : [["Symbol", ""], ["Side", "wide"], ["Contracts", "num"], ["Entry", "num wide"], ["Mark", "num wide"], ["Notional", "num"], ["Unrealized PnL", "num"], ["Share", "num wide"]];
    const headRow = element("tr");
    for (const [label, className] of columns) headRow.appendChild(element("th", className, label));
    head2.appendChild(headRow);
    table.appendChild(head2);
    const body = element("tbody");
    const rows = account.market_type === "spot" ? account.holdings : account.positions;
    for (const item of rows) {
      const row = element("tr");
      if (account.market_type === "spot") {
        row.dataset.asset = item.asset;
        cell(row, item.asset, "name");
        cell(row, item.total_text, "num amount");
        cell(row, item.used_text, "num used wide");
        if (outside) cell(row, item.outside_text || "0", "num outside wide");
        cell(row, item.price_text, "num price wide");
        cell(row, item.value_text, "num value");
        cell(row, item.weight_text, "num share");
      } else {
        row.dataset.symbol = item.symbol;
        cell(row, item.symbol, "name");
        cell(row, item.side, "wide side " + item.side);
        cell(row, item.contracts_text, "num amount");
        cell(row, item.entry_price_text, "num entry wide");
        cell(row, item.mark_price_text, "num mark wide");
        cell(row, item.notional_text, "num value");
        cell(row, item.unrealized_pnl_text, "num pnl " + (num(item.unrealized_pnl) < 0 ? "bad" : ""));
        cell(row, item.weight_text, "num share wide");
      }
      body.appendChild(row);
    }
    if (!rows.length) {
      const row = element("tr", "empty");
      cell(row, account.market_type === "spot" ? "no balance" : "no open position", "muted").colSpan = columns.length;
      body.appendChild(row);
    }
    table.appendChild(body);
    holder.appendChild(table);
    card.appendChild(holder);
    return card;
  }

  function renderAccounts(accounts) {
    const holder = byId("accounts");
    holder.replaceChildren(...accounts.map(accountCard));
    if (!accounts.length) holder.appendChild(element("p", "muted", "no snapshot yet"));
  }

  function renderFills(fills) {
    fillTable("#fills", fills, (f) => {
      const row = element("tr");
      row.dataset.symbol = f.symbol;
      cell(row, when(f.time), "time", f.time);
      cell(row, f.account, "acct wide");
      cell(row, f.symbol, "symbol");
      cell(row, f.side, "side " + f.side, f.dry_run ? "paper fill (dry-run): never sent to the exchange" : "");
      cell(row, f.amount_text, "num amount");
      cell(row, f.price_text, "num price wide");
      cell(row, f.notional_text, "num notional wide");
      cell(row, f.fee_text, "num fee");
      return row;
    });
  }

  function renderOrders(orders) {
    fillTable("#orders", orders, (o) => {
      const row = element("tr", "order-" + o.status.replace(/ /g, "-"));
      row.dataset.clientOrderId = o.client_order_id;
      cell(row, when(o.time), "time", o.time);
      cell(row, o.symbol, "symbol");
      cell(row, o.side, "side " + o.side);
      cell(row, o.amount_text, "num amount");
      cell(row, o.filled_text, "num filled");
      cell(row, o.price_text, "num price wide");
      cell(row, o.status + (o.detail ? ": " + o.detail : ""), "outcome");
      cell(row, o.client_order_id, "cid wide");
      return row;
    });
  }

  function renderRecent(recent) {
    fillTable("#recent", recent || [], (entry) => {
      const row = element("tr");
      cell(row, when(entry.time), "time", entry.time);
      cell(row, entry.cycle_id, "cycle wide");
      cell(row, entry.event, "event");
      cell(row, entry.summary, "what");
      return row;
    });
  }

  function render(status) {
    lastStatus = status;
    const sleeves = sleeveRows(status);
    renderSummary(status);
    renderAllocation(sleeves);
    renderSleeves(sleeves);
    renderFunding(status.funding || []);
    renderAccounts(status.accounts || []);
    renderFills(status.fills || []);
    renderOrders(status.orders || []);
    renderRecent(status.recent);
  }

  async function getJson(path) {
    const response = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(path.split("?")[0] + ": HTTP " + response.status);
    return response.json();
  }

  let timer = null;
  async function refresh(again = true) {
    try {
      const [status, history] = await Promise.all([getJson(scoped("status")), getJson(scoped("history?window=" + windowName))]);
      render(status);
      lastHistory = history;
      renderHistory(history);
      setText("updated", new Date().toISOString().replace("T", " ").slice(0, 19) + " UTC");
      setText("error", "");
      document.body.dataset.cycle = status.last_cycle ? status.last_cycle.cycle_id : "";
      document.body.dataset.rendered = "true";
      document.body.dataset.window = history.window;
    } catch (error) {
      setText("error", "status unavailable: " + error.message);
    } finally {
      if (again) {
        clearTimeout(timer);
        timer = setTimeout(refresh, REFRESH_SECONDS * 1000);
      }
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    setText("refresh-seconds", String(REFRESH_SECONDS));
    for (const button of document.querySelectorAll(".tabs button")) {
      button.addEventListener("click", () => {
        windowName = button.dataset.window;
        for (const other of document.querySelectorAll(".tabs button")) other.setAttribute("aria-pressed", String(other === button));
        refresh(false);
      });
    }
    byId("control-form").addEventListener("submit", (event) => event.preventDefault());
    byId("halt").addEventListener("click", () => control("halt"));
    byId("resume").addEventListener("click", () => control("resume"));
    let resizing = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizing);
      resizing = setTimeout(() => {
        if (lastStatus) renderAllocation(sleeveRows(lastStatus));
        if (lastHistory) renderHistory(lastHistory);
      }, 100);
    });
    refresh();
  });
})();
