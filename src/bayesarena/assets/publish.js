// bayesarena leaderboard page. Reads the JSON in #site-data and builds the boards.
// Every string from the data reaches the DOM through textContent (or canvas fillText): no
// innerHTML, no HTML parsing of data. No libraries, no network.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("site-data").textContent);
  const LEVEL = (100 * DATA.prob).toLocaleString("en-US", { maximumFractionDigits: 4 }) + "%";

  // Colour-blind-safe perceptual ramps (matplotlib's viridis and cividis, 10 stops each).
  const RAMPS = {
    viridis: ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779",
              "#6ece58", "#b5de2b", "#fde725"],
    cividis: ["#00224e", "#123570", "#3b496c", "#575d6d", "#707173", "#8a8779", "#a69d75",
              "#c4b56c", "#e4cf5b", "#fee838"],
  };

  function hexToRgb(hex) {
    const n = parseInt(hex.slice(1), 16);
    return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  }

  function rampColour(name, t) {
    const stops = RAMPS[name];
    const x = Math.min(1, Math.max(0, t)) * (stops.length - 1);
    const k = Math.min(stops.length - 2, Math.floor(x));
    const a = hexToRgb(stops[k]), b = hexToRgb(stops[k + 1]), f = x - k;
    return [0, 1, 2].map((i) => Math.round(a[i] + (b[i] - a[i]) * f));
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  const fmtInt = (x) => Math.round(x).toLocaleString("en-US");
  const fmtRating = (x) => (x === null || x === undefined ? "\u2014" : Math.round(x).toString());
  function fmtProb(p) {
    if (p === null || p === undefined) return "\u2014";
    if (p < 0.0005) return "<0.1%";
    if (p > 0.9995) return ">99.9%";
    return (100 * p).toFixed(1) + "%";
  }

  // ---- the sortable table -----------------------------------------------------------------
  const COLUMNS = [
    { key: "rank", label: "Rank", dir: "asc", value: (r) => r.rank },
    { key: "model", label: "Model", dir: "asc", left: true, value: (r) => r.model },
    { key: "rating", label: "Rating", dir: "desc", value: (r) => r.rating },
    { key: "ci", label: LEVEL + " credible interval", sortable: false },
    { key: "rating_with_style", label: "With style", sub: "rating, " + LEVEL + " CrI",
      dir: "desc", style: true,
      value: (r) => r.rating_with_style },
    { key: "rank_interval", label: "Rank range", sub: LEVEL + " joint", dir: "asc",
      value: (r) => r.rank_lower + r.rank_upper / 1e4 },
    { key: "p_top1", label: "P(top\u20111)", dir: "desc", value: (r) => r.p_top1 },
    { key: "votes", label: "Votes", dir: "desc", value: (r) => r.votes },
  ];

  function buildTable(board) {
    const columns = COLUMNS.filter((c) => !c.style || board.has_style);
    const rows = board.rows;
    let lo = Infinity, hi = -Infinity;
    for (const r of rows) {
      lo = Math.min(lo, r.rating_lower);
      hi = Math.max(hi, r.rating_upper);
    }
    const pad = Math.max(1, (hi - lo) * 0.04);
    lo -= pad; hi += pad;
    const pos = (x) => (100 * (x - lo)) / (hi - lo);

    const table = el("table", "board");
    table.dataset.board = board.key;
    const cap = el("caption", null, board.label + " leaderboard");
    cap.hidden = true;
    table.appendChild(cap);
    const thead = el("thead"), headRow = el("tr");
    const headers = {};
    for (const col of columns) {
      const th = el("th", col.left ? "left" : null);
      th.scope = "col";
      th.dataset.key = col.key;
      if (col.sortable === false) {
        th.className = "left";
        th.appendChild(el("span", null, col.label));
        const axis = el("div", "ci-axis");
        axis.appendChild(el("span", null, fmtRating(lo)));
        axis.appendChild(el("span", null, fmtRating(hi)));
        th.appendChild(axis);
      } else {
        const button = el("button");
        button.type = "button";
        const label = el("span", null, col.label);
        if (col.sub) label.appendChild(el("span", "sub", col.sub));
        button.appendChild(label);
        button.appendChild(el("span", "arrow"));
        button.addEventListener("click", () => sortBy(col.key));
        th.appendChild(button);
        th.setAttribute("aria-sort", "none");
        headers[col.key] = th;
      }
      headRow.appendChild(th);
    }
    thead.appendChild(headRow);
    table.appendChild(thead);

    const tbody = el("tbody");
    const items = rows.map((r) => {
      const tr = el("tr");
      tr.dataset.model = r.model;
      for (const col of columns) {
        let td;
        switch (col.key) {
          case "rank": td = el("td", "rank", r.rank); break;
          case "model":
            td = el("td", "model left", r.model);
            td.title = r.model;
            break;
          case "rating": td = el("td", "rating", fmtRating(r.rating)); break;
          case "ci": {
            td = el("td", "ci");
            const cell = el("div", "ci-cell");
            const track = el("div", "ci-track");
            const bar = el("div", "ci-bar");
            bar.style.left = pos(r.rating_lower) + "%";
            bar.style.width = Math.max(0.5, pos(r.rating_upper) - pos(r.rating_lower)) + "%";
            const dot = el("div", "ci-dot");
            dot.style.left = pos(r.rating) + "%";
            track.appendChild(bar);
            track.appendChild(dot);
            track.title = LEVEL + " credible interval " + fmtRating(r.rating_lower) + " to " +
              fmtRating(r.rating_upper);
            cell.appendChild(track);
            cell.appendChild(el("span", "ci-text",
              fmtRating(r.rating_lower) + " \u2013 " + fmtRating(r.rating_upper)));
            td.appendChild(cell);
            break;
          }
          case "rating_with_style":
            td = el("td", "styled", fmtRating(r.rating_with_style));
            td.appendChild(el("span", "sub", fmtRating(r.rating_with_style_lower) + " \u2013 " +
              fmtRating(r.rating_with_style_upper)));
            break;
          case "rank_interval":
            td = el("td", "rank-interval", r.rank_lower === r.rank_upper ? String(r.rank_lower)
              : r.rank_lower + "\u2013" + r.rank_upper);
            break;
          case "p_top1": td = el("td", "p-top1", fmtProb(r.p_top1)); break;
          case "votes": td = el("td", "votes", fmtInt(r.votes)); break;
        }
        tr.appendChild(td);
      }
      tbody.appendChild(tr);
      return { row: r, tr: tr };
    });
    table.appendChild(tbody);

    const state = { key: null, dir: null };
    function sortBy(key, dir) {
      const col = columns.find((c) => c.key === key);
      if (!dir) dir = state.key === key ? (state.dir === "asc" ? "desc" : "asc") : col.dir;
      const sign = dir === "asc" ? 1 : -1;
      const sorted = items.slice().sort((a, b) => {
        const x = col.value(a.row), y = col.value(b.row);
        let c;
        if (typeof x === "string") c = x.localeCompare(y, "en", { numeric: true });
        else c = (x === null) - (y === null) || (x < y ? -1 : x > y ? 1 : 0);
        return sign * c || a.row.rank - b.row.rank;
      });
      for (const item of sorted) tbody.appendChild(item.tr);
      for (const k in headers) headers[k].setAttribute("aria-sort", "none");
      headers[key].setAttribute("aria-sort", dir === "asc" ? "ascending" : "descending");
      state.key = key; state.dir = dir;
    }
    sortBy("rating", "desc");
    return table;
  }

  // ---- heatmaps (canvas; labels drawn with fillText) --------------------------------------
  const tooltip = el("div", "tooltip");
  tooltip.hidden = true;
  tooltip.setAttribute("role", "status");
  document.body.appendChild(tooltip);

  function truncate(ctx, text, width) {
    if (ctx.measureText(text).width <= width) return text;
    let lo = 0, hi = text.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (ctx.measureText(text.slice(0, mid) + "\u2026").width <= width) lo = mid; else hi = mid - 1;
    }
    return text.slice(0, lo) + "\u2026";
  }

  function drawHeatmap(canvas, spec) {
    const n = spec.rows.length, m = spec.cols.length;
    const wrap = canvas.parentNode;
    const font = "12px system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
    const ctx0 = canvas.getContext("2d");
    ctx0.font = font;
    let labelW = 0;
    for (const label of spec.rows) labelW = Math.max(labelW, ctx0.measureText(label).width);
    labelW = Math.min(190, Math.ceil(labelW) + 12);
    const topH = 22;
    const avail = Math.max(200, wrap.clientWidth - labelW - 4);
    const cell = Math.max(4, Math.min(46, Math.floor(avail / m)));
    const width = labelW + m * cell + 2, height = topH + n * cell + 2;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = font;
    ctx.textBaseline = "middle";
    const showValues = cell >= 34;
    const gap = cell >= 16 ? 1 : 0;  // a hairline between cells where they are large enough
    const labelEvery = Math.max(1, Math.ceil(12 / cell));
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        const v = spec.values[i][j];
        const x = labelW + j * cell, y = topH + i * cell;
        if (v === null) {
          ctx.fillStyle = "#eef0f3";
          ctx.fillRect(x, y, cell - gap, cell - gap);
          continue;
        }
        const rgb = rampColour(spec.ramp, v);
        ctx.fillStyle = "rgb(" + rgb.join(",") + ")";
        ctx.fillRect(x, y, cell - gap, cell - gap);
        if (showValues) {
          const light = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] > 140;
          ctx.fillStyle = light ? "#1b1f24" : "#ffffff";
          ctx.textAlign = "center";
          ctx.font = "11px system-ui, sans-serif";
          ctx.fillText(spec.cellText(v), x + cell / 2, y + cell / 2);
          ctx.font = font;
        }
      }
    }
    ctx.fillStyle = "#1b1f24";
    ctx.textAlign = "right";
    for (let i = 0; i < n; i += labelEvery) {
      ctx.fillText(truncate(ctx, spec.rows[i], labelW - 10), labelW - 6, topH + i * cell + cell / 2);
    }
    ctx.fillStyle = "#5b6470";
    ctx.textAlign = "center";
    const colEvery = Math.max(1, Math.ceil(22 / cell));
    for (let j = 0; j < m; j += colEvery) {
      ctx.fillText(spec.colShort[j], labelW + j * cell + cell / 2, topH / 2);
    }
    canvas.onmousemove = (ev) => {
      const rect = canvas.getBoundingClientRect();
      const j = Math.floor((ev.clientX - rect.left - labelW) / cell);
      const i = Math.floor((ev.clientY - rect.top - topH) / cell);
      if (i < 0 || j < 0 || i >= n || j >= m || spec.values[i][j] === null) {
        tooltip.hidden = true;
        return;
      }
      tooltip.textContent = spec.describe(i, j, spec.values[i][j]);
      tooltip.hidden = false;
      const x = Math.min(ev.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
      tooltip.style.left = x + "px";
      tooltip.style.top = ev.clientY + 14 + "px";
    };
    canvas.onmouseleave = () => { tooltip.hidden = true; };
  }

  function legend(ramp, left, right) {
    const box = el("div", "legend");
    box.appendChild(el("span", null, left));
    const bar = el("div", "ramp");
    bar.style.background = "linear-gradient(to right, " + RAMPS[ramp].join(", ") + ")";
    box.appendChild(bar);
    box.appendChild(el("span", null, right));
    return box;
  }

  function heatmapCard(title, note, spec, left, right) {
    const card = el("section", "card");
    card.appendChild(el("h2", null, title));
    card.appendChild(el("p", "card-note", note));
    const wrap = el("div", "heat-wrap");
    const canvas = el("canvas");
    canvas.setAttribute("role", "img");
    canvas.setAttribute("aria-label", title);
    wrap.appendChild(canvas);
    card.appendChild(wrap);
    card.appendChild(legend(spec.ramp, left, right));
    return { card: card, draw: () => drawHeatmap(canvas, spec) };
  }

  // ---- boards and tabs -------------------------------------------------------------------
  function buildBoard(board, index) {
    const panel = el("section", "board-panel");
    panel.id = "board-" + index;
    panel.setAttribute("role", "tabpanel");
    panel.dataset.board = board.key;

    const card = el("div", "card");
    const head = el("div", "card-head");
    head.appendChild(el("h2", null, board.category === null ? "Overall leaderboard"
      : "Category: " + board.label));
    const dl = el("div", "downloads");
    dl.appendChild(el("span", null, "Download"));
    for (const fmt of ["csv", "json"]) {
      const a = el("a", null, fmt.toUpperCase());
      a.href = board.files[fmt];
      a.setAttribute("download", "");
      dl.appendChild(a);
    }
    head.appendChild(dl);
    card.appendChild(head);
    let note = board.rows.length + " models, ranked by posterior mean rating. Click a column " +
      "header to sort.";
    if (board.category !== null) note += " Votes are the votes in this category.";
    if (board.has_style) note += " Rating is style-controlled; \u201crating with style\u201d " +
      "leaves each model's usual style advantage in.";
    card.appendChild(el("p", "card-note", note));
    const scroll = el("div", "table-scroll");
    scroll.appendChild(buildTable(board));
    card.appendChild(scroll);
    panel.appendChild(card);

    const names = board.rows.map((r) => r.model);
    const short = board.rows.map((r) => String(r.rank));
    const rowLabels = board.rows.map((r) => r.rank + ". " + r.model);
    const win = heatmapCard("P(row beats column)",
      "Probability that the row model wins one vote against the column model (columns by rank).",
      {
        rows: rowLabels, cols: names, colShort: short, values: board.win, ramp: "cividis",
        cellText: (v) => v.toFixed(2),
        describe: (i, j, v) => names[i] + " beats " + names[j] + ": " + v.toFixed(3),
      }, "0", "1");
    const ranks = board.rows.map((r, k) => String(k + 1));
    const rp = heatmapCard("P(rank = k)",
      "Probability that the row model holds rank k (columns), from the joint posterior draws.",
      {
        rows: rowLabels, cols: ranks, colShort: ranks, values: board.rank_probs,
        ramp: "viridis",
        cellText: (v) => (v < 0.005 ? "" : v.toFixed(2)),
        describe: (i, k, v) => names[i] + " at rank " + (k + 1) + ": " + fmtProb(v),
      }, "0", "1");
    const grid = el("div", "heatmaps");
    grid.appendChild(win.card);
    grid.appendChild(rp.card);
    panel.appendChild(grid);
    return { panel: panel, draw: () => { win.draw(); rp.draw(); }, drawn: false };
  }

  const tabs = document.getElementById("tabs");
  const host = document.getElementById("boards");
  const built = DATA.boards.map(buildBoard);
  const buttons = [];
  built.forEach((b, k) => {
    host.appendChild(b.panel);
    const tab = el("button", "tab", DATA.boards[k].label);
    tab.type = "button";
    tab.id = "tab-" + k;
    tab.setAttribute("role", "tab");
    tab.setAttribute("aria-controls", b.panel.id);
    tab.dataset.board = DATA.boards[k].key;
    tab.addEventListener("click", () => select(k, true));
    tab.addEventListener("keydown", (ev) => {
      const step = ev.key === "ArrowRight" ? 1 : ev.key === "ArrowLeft" ? -1 : 0;
      if (step) {
        const next = (k + step + built.length) % built.length;
        select(next, true);
        buttons[next].focus();
      }
    });
    b.panel.setAttribute("aria-labelledby", tab.id);
    buttons.push(tab);
    tabs.appendChild(tab);
  });
  tabs.hidden = built.length < 2;

  let current = -1;
  function select(k, updateHash) {
    built.forEach((b, i) => { b.panel.hidden = i !== k; });
    buttons.forEach((t, i) => {
      t.setAttribute("aria-selected", String(i === k));
      t.tabIndex = i === k ? 0 : -1;
    });
    current = k;
    if (!built[k].drawn) { built[k].draw(); built[k].drawn = true; }
    if (updateHash) {
      try {
        history.replaceState(null, "", k === 0 ? location.pathname + location.search
          : "#" + DATA.boards[k].key);
      } catch (e) { /* some file:// contexts refuse it: the tab still switches */ }
    }
  }

  const fromHash = DATA.boards.findIndex((b) => "#" + b.key === location.hash);
  select(fromHash > 0 ? fromHash : 0, false);

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      built.forEach((b) => { b.drawn = false; });
      select(current, false);
    }, 150);
  });
})();
