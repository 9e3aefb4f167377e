// A table's page: sort, filter and drill down, with the view kept in the URL fragment.
// Fragment grammar (docs/usage.md, "Web pages"): pairs KEY=VALUE joined by "&", values
// percent-encoded: filter=TEXT, sort=COLUMN or sort=-COLUMN (descending), COMPONENT=NAME,
// COLUMN=MIN..MAX (either bound may be left out), row=N (the drill-down of row N).
// Nothing here loads anything: the data is the JSON in #page-data.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("page-data").textContent);
  const view = data.view;
  const cols = view.columns;
  const table = document.getElementById("board");
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const panel = document.getElementById("detail");
  const SVG = svgNamespace();
  let state = parse(location.hash);

  function svgNamespace() {
    const probe = document.createElement("div");
    probe.innerHTML = "<svg></svg>";
    return probe.firstChild.namespaceURI;
  }

  function decode(text) {
    try {
      return decodeURIComponent(text);
    } catch (e) {
      return text;
    }
  }

  function column(token) {
    const t = token.trim().toLowerCase();
    const exact = cols.findIndex((c) => c.slug === t || c.name.toLowerCase() === t);
    if (exact >= 0 || !t) return exact;
    const hits = cols.flatMap((c, i) => (c.slug.startsWith(t) ? [i] : []));
    return hits.length === 1 ? hits[0] : -1;
  }

  function bounds(text) {
    const at = text.indexOf("..");
    const number = (s) => (s.trim() === "" || isNaN(Number(s)) ? null : Number(s));
    return [number(text.slice(0, at)), number(text.slice(at + 2))];
  }

  function parse(hash) {
    const s = { filter: "", sort: -1, desc: false, parts: {}, ranges: {}, row: -1 };
    for (const pair of hash.replace(/^#/, "").split("&")) {
      if (!pair) continue;
      const eq = pair.indexOf("=");
      const key = decode(eq < 0 ? pair : pair.slice(0, eq)).toLowerCase();
      const value = eq < 0 ? "" : decode(pair.slice(eq + 1));
      const ranged = value.includes("..") && cols[column(key)]?.numeric;
      if (key === "filter") s.filter = value;
      else if (key === "sort") {
        const desc = value.startsWith("-");
        const c = column(desc ? value.slice(1) : value);
        if (c >= 0) Object.assign(s, { sort: c, desc: desc });
      } else if (key === "row") {
        const n = parseInt(value, 10);
        if (n >= 1 && n <= rows.length) s.row = n - 1;
      } else if (view.parts.includes(key) && !ranged) s.parts[key] = value;
      else if (ranged) s.ranges[column(key)] = bounds(value);
    }
    return s;
  }

  function fragment(s) {
    const enc = encodeURIComponent;
    const out = [];
    if (s.filter) out.push("filter=" + enc(s.filter));
    for (const name of view.parts) if (s.parts[name]) out.push(enc(name) + "=" + enc(s.parts[name]));
    cols.forEach((c, i) => {
      const b = s.ranges[i];
      if (b && (b[0] !== null || b[1] !== null))
        out.push(c.slug + "=" + (b[0] ?? "") + ".." + (b[1] ?? ""));
    });
    if (s.sort >= 0) out.push("sort=" + (s.desc ? "-" : "") + cols[s.sort].slug);
    if (s.row >= 0) out.push("row=" + (s.row + 1));
    return out.join("&");
  }

  function keep(s) {
    const text = fragment(s);
    try {
      history.replaceState(null, "", text ? "#" + text : location.pathname + location.search);
    } catch (e) {
      location.hash = text;
    }
  }

  function visible(s, i) {
    const row = view.rows[i];
    const text = row.text.toLowerCase();
    const terms = s.filter.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.every((t) => text.includes(t))) return false;
    for (const [name, want] of Object.entries(s.parts))
      if (want && row.parts[name] !== want) return false;
    for (const [c, [lo, hi]] of Object.entries(s.ranges)) {
      const v = row.values[c];
      if (lo === null && hi === null) continue;
      if (typeof v !== "number") return false;
      if ((lo !== null && v < lo) || (hi !== null && v > hi)) return false;
    }
    return true;
  }

  function order(s) {
    const index = rows.map((_, i) => i);
    if (s.sort < 0) return index;
    const sign = s.desc ? -1 : 1;
    const key = (i) => view.rows[i].values[s.sort];
    return index.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null || y === null) return (x === null) - (y === null) || a - b;
      const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return sign * c || a - b;
    });
  }

  function apply(s) {
    const shown = rows.map((_, i) => visible(s, i));
    for (const tr of document.querySelectorAll("table.rows tr[data-i]"))
      tr.hidden = !shown[Number(tr.dataset.i)];
    for (const i of order(s)) body.appendChild(rows[i]);
    table.querySelectorAll("th").forEach((th, i) => {
      if (i === s.sort) th.setAttribute("aria-sort", s.desc ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    });
    const count = shown.filter(Boolean).length;
    document.getElementById("shown").textContent = count + " of " + rows.length + " rows shown";
    controls(s);
    detail(s.row);
  }

  function controls(s) {
    const box = document.getElementById("filter");
    if (box.value !== s.filter) box.value = s.filter;
    for (const select of document.querySelectorAll("select[data-part]"))
      select.value = s.parts[select.dataset.part] || "";
    for (const set of document.querySelectorAll("fieldset[data-range]")) {
      const b = s.ranges[column(set.dataset.range)] || [null, null];
      set.querySelectorAll("input").forEach((input, k) => {
        const want = b[k] === null ? "" : String(b[k]);
        if (input.value !== want && Number(input.value) !== b[k]) input.value = want;
      });
    }
  }

  function change(update) {
    update(state);
    keep(state);
    apply(state);
  }

  // The drill-down: each section of a row's detail, drawn from the data.

  function el(tag, text, attrs) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  function grid(columns, lines, cellAttrs) {
    const t = el("table");
    const head = t.createTHead().insertRow();
    for (const c of columns) head.appendChild(el("th", c));
    const tb = t.createTBody();
    lines.forEach((line, n) => {
      const tr = tb.insertRow();
      line.forEach((cell, k) => tr.appendChild(el("td", cell, cellAttrs ? cellAttrs(n, k) : {})));
    });
    return t;
  }

  function bars(section) {
    const step = 16, high = 120, top = 8, width = section.labels.length * step;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + (width + 8) + " " + (high + top + 74));
    svg.setAttribute("class", "bars");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", section.title);
    const add = (tag, attrs, text) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      if (text) node.textContent = text;
      svg.appendChild(node);
      return node;
    };
    add("line", { x1: 0, x2: width, y1: top + high, y2: top + high, class: "axis" });
    section.labels.forEach((label, i) => {
      const x = i * step + 3, v = section.values[i] ?? 0;
      const bar = add("rect", { x: x, y: top + high * (1 - v), width: step - 4, height: high * v, class: "bar" });
      bar.appendChild(document.createElementNS(SVG, "title")).textContent = label + ": " + section.rows[i][1];
      const ref = section.reference ? section.reference[i] : null;
      if (ref !== null && ref !== undefined) {
        const y = top + high * (1 - ref);
        add("line", { x1: x - 1, x2: x + step - 3, y1: y, y2: y, class: "ref" });
      }
      const lx = x + (step - 4) / 2, ly = top + high + 6;
      add("text", { x: lx, y: ly, transform: "rotate(60 " + lx + " " + ly + ")", class: "label" }, label);
    });
    const wrap = el("div", null, { class: "bars-wrap" });
    const picture = el("div");
    picture.appendChild(svg);
    if (section.reference_label) picture.appendChild(el("p", "Bars: this row; ticks: " + section.reference_label + ".", { class: "note" }));
    wrap.appendChild(picture);
    wrap.appendChild(grid(section.columns, section.rows, (n, k) => (k === 1 ? { "data-class": section.labels[n], class: "num" } : k > 1 ? { class: "num" } : {})));
    return wrap;
  }

  const SECTIONS = {
    bars: bars,
    table: (s) => grid(s.columns, s.rows),
    facts: (s) => {
      const dl = el("dl");
      for (const [k, v] of s.items) {
        dl.appendChild(el("dt", k));
        dl.appendChild(el("dd", v));
      }
      return dl;
    },
    image: (s) => {
      const fig = el("figure");
      fig.appendChild(el("img", null, { src: s.src, alt: s.alt }));
      return fig;
    },
    runs: (s) => {
      const ul = el("ul", null, { class: "runs" });
      for (const run of s.items) {
        const li = el("li");
        li.appendChild(el("code", run.path));
        for (const [label, href] of run.links) {
          li.appendChild(document.createTextNode(" "));
          li.appendChild(el("a", label, { href: href }));
        }
        ul.appendChild(li);
      }
      return ul;
    },
    text: (s) => el("p", s.text),
  };

  function detail(i) {
    rows.forEach((tr, k) => tr.classList.toggle("open", k === i));
    if (i < 0 || !data.details[i] || !data.details[i].length) {
      panel.hidden = true;
      panel.replaceChildren();
      return;
    }
    if (panel.dataset.i === String(i) && !panel.hidden) return;
    panel.replaceChildren();
    panel.dataset.i = String(i);
    const head = el("header");
    head.appendChild(el("h2", view.rows[i].title));
    const close = el("button", "Close", { type: "button", id: "close" });
    close.addEventListener("click", () => change((s) => { s.row = -1; }));
    head.appendChild(close);
    panel.appendChild(head);
    for (const section of data.details[i]) {
      const part = el("section", null, { "data-kind": section.kind });
      part.appendChild(el("h3", section.title));
      part.appendChild(SECTIONS[section.kind](section));
      panel.appendChild(part);
    }
    panel.hidden = false;
    panel.scrollIntoView({ block: "nearest" });
  }

  // The pictures under the table (harness/results/plots.py decides what each shows; this only
  // scales and draws). Every mark carries the twin's values as data attributes.

  function svgOf(width, height, label) {
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", label);
    const add = (tag, attrs, text, parent) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) node.setAttribute(k, v);
      if (text !== undefined && text !== null) node.textContent = text;
      (parent || svg).appendChild(node);
      return node;
    };
    return [svg, add];
  }

  function scale(values, from, to) {
    let lo = Math.min(...values), hi = Math.max(...values);
    if (!(hi > lo)) { lo -= 0.5 * (Math.abs(lo) || 1) * 0.1; hi += 0.5 * (Math.abs(hi) || 1) * 0.1; }
    const pad = (hi - lo) * 0.04;
    lo -= pad; hi += pad;
    const f = (v) => from + ((v - lo) / (hi - lo)) * (to - from);
    f.lo = lo; f.hi = hi;
    return f;
  }

  function ticks(f, count) {
    const raw = (f.hi - f.lo) / count, power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const out = [];
    for (let v = Math.ceil(f.lo / step) * step; v <= f.hi + 1e-12; v += step) out.push(Number(v.toPrecision(12)));
    return out;
  }

  function axis(add, f, at, horizontal, span, digits) {
    for (const v of ticks(f, 5)) {
      const p = f(v);
      if (horizontal) {
        add("line", { x1: p, x2: p, y1: span[0], y2: span[1], class: "grid" });
        add("text", { x: p, y: at, class: "tick", "text-anchor": "middle" }, v.toFixed(digits));
      } else {
        add("line", { x1: span[0], x2: span[1], y1: p, y2: p, class: "grid" });
        add("text", { x: at, y: p + 3, class: "tick", "text-anchor": "end" }, v.toFixed(digits));
      }
    }
  }

  function openRow(node, i) {
    node.addEventListener("click", () => change((s) => { s.row = i; }));
  }

  function forest(plot) {
    const longest = Math.max(3, ...plot.rows.map((r) => r.label.length));
    const rowH = 14, left = Math.min(180, 14 + 6 * longest), right = 12, top = 22, width = 720;
    const height = top + plot.rows.length * rowH + 8;
    const [svg, add] = svgOf(width, height, plot.title);
    svg.setAttribute("class", "forest");
    const ends = plot.rows.flatMap((r) => [r.mean, r.low, r.high]).filter((v) => v !== null);
    const x = scale(ends, left, width - right);
    axis(add, x, 12, true, [top - 4, height - 4], 2);
    if (plot.shaded)
      add("rect", { x: x(plot.shaded.low), y: top - 4, width: x(plot.shaded.high) - x(plot.shaded.low),
        height: height - top, class: "leader-band", "data-i": plot.shaded.i, "data-low": plot.shaded.low,
        "data-high": plot.shaded.high });
    plot.rows.forEach((r, k) => {
      const y = top + k * rowH + rowH / 2;
      const g = add("g", { class: "row", "data-i": r.i });
      add("title", {}, r.title + ": " + r.mean.toFixed(4) + (r.low === null ? "" : " [" + r.low.toFixed(4) + ", " + r.high.toFixed(4) + "]"), g);
      add("text", { x: left - 6, y: y + 3, class: "label", "text-anchor": "end" }, r.label, g);
      if (r.low !== null)
        add("line", { x1: x(r.low), x2: x(r.high), y1: y, y2: y, class: "ci", "data-low": r.low, "data-high": r.high }, null, g);
      add("circle", { cx: x(r.mean), cy: y, r: 3, class: "mean", "data-mean": r.mean }, null, g);
      openRow(g, r.i);
    });
    return svg;
  }

  function scatter(choice) {
    const width = 560, height = 320, left = 52, right = 14, top = 12, bottom = 40;
    const [svg, add] = svgOf(width, height, "Mean Dice against " + choice.name);
    svg.setAttribute("class", "scatter");
    svg.dataset.axis = choice.key;
    const x = scale(choice.points.map((p) => p.x), left, width - right);
    const y = scale(choice.points.map((p) => p.y), height - bottom, top);
    axis(add, x, height - bottom + 16, true, [top, height - bottom], 2);
    axis(add, y, left - 6, false, [left, width - right], 3);
    add("text", { x: (left + width - right) / 2, y: height - 6, class: "axis-name", "text-anchor": "middle" },
      choice.name + (choice.less_is_better ? " (less is better)" : " (more is better)"));
    add("text", { x: 12, y: (top + height - bottom) / 2, class: "axis-name", "text-anchor": "middle",
      transform: "rotate(-90 12 " + (top + height - bottom) / 2 + ")" }, "Mean Dice");
    const at = new Map(choice.points.map((p) => [p.i, p]));
    add("polyline", { class: "front", "data-rows": choice.front.join(","),
      points: choice.front.map((i) => x(at.get(i).x) + "," + y(at.get(i).y)).join(" ") });
    const front = new Set(choice.front);
    for (const p of choice.points) {
      const g = add("g", { class: "row", "data-i": p.i });
      add("title", {}, p.title + ": " + choice.name + " " + p.x + ", mean Dice " + p.y.toFixed(4), g);
      add("circle", { cx: x(p.x), cy: y(p.y), r: front.has(p.i) ? 5 : 3.5,
        class: front.has(p.i) ? "point on-front" : "point", "data-x": p.x, "data-y": p.y,
        "data-front": front.has(p.i) ? "1" : "0" }, null, g);
      add("text", { x: x(p.x) + 7, y: y(p.y) + 3, class: "label" }, p.label, g);
      openRow(g, p.i);
    }
    return svg;
  }

  function costPlot(plot, part) {
    if (!plot.axes.length) {
      part.appendChild(el("p", "Nothing to plot: " + plot.empty + ".", { class: "note" }));
      return;
    }
    const pick = el("select", null, { id: "cost-axis", "aria-label": "cost to plot against" });
    plot.axes.forEach((a, k) => pick.appendChild(el("option", a.name, { value: String(k) })));
    const label = el("label", "Cost ");
    label.appendChild(pick);
    const holder = el("div", null, { class: "plot" });
    const note = el("p", null, { class: "note" });
    const draw = () => {
      const choice = plot.axes[Number(pick.value)];
      holder.replaceChildren(scatter(choice));
      const better = choice.less_is_better ? "lower" : "higher";
      note.textContent = "On the front (ringed, joined): no other row has both a higher mean Dice and a " +
        better + " " + choice.name + "." + (choice.missing ? " " + choice.missing + " row(s) without " + choice.name + " left out." : "");
    };
    pick.addEventListener("change", draw);
    part.append(label, holder, note);
    draw();
  }

  function drawPlots() {
    const place = document.getElementById("plots");
    if (!place) return;
    for (const plot of data.plots) {
      const part = el("section", null, { "data-kind": plot.kind });
      part.appendChild(el("h2", plot.title));
      if (plot.kind === "forest") {
        const holder = el("div", null, { class: "plot" });
        holder.appendChild(forest(plot));
        part.appendChild(holder);
      } else costPlot(plot, part);
      place.appendChild(part);
    }
  }

  drawPlots();
  document.getElementById("filter").addEventListener("input", (e) => change((s) => { s.filter = e.target.value; }));
  for (const select of document.querySelectorAll("select[data-part]"))
    select.addEventListener("change", () => change((s) => { s.parts[select.dataset.part] = select.value; }));
  for (const set of document.querySelectorAll("fieldset[data-range]"))
    set.addEventListener("input", () => change((s) => {
      const values = Array.from(set.querySelectorAll("input"), (x) => (x.value === "" || isNaN(Number(x.value)) ? null : Number(x.value)));
      s.ranges[column(set.dataset.range)] = values;
    }));
  table.querySelectorAll("th").forEach((th, i) =>
    th.addEventListener("click", () => change((s) => {
      s.desc = s.sort === i ? !s.desc : false;
      s.sort = i;
    })));
  rows.forEach((tr, i) => {
    const open = () => {
      if (data.details[i].length) change((s) => { s.row = s.row === i ? -1 : i; });
    };
    tr.addEventListener("click", (e) => { if (!e.target.closest("a")) open(); });
    tr.addEventListener("keydown", (e) => { if (e.key === "Enter") open(); });
  });
  window.addEventListener("hashchange", () => {
    state = parse(location.hash);
    apply(state);
  });
  apply(state);
})();
