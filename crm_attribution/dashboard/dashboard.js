/* crm-attribution dashboard: draws every view from the dashboard data object.
 *
 * The data is embedded in the page (#dashboard-data); with a poll URL the page fetches a fresh
 * object every few seconds and redraws. Every chart has its numbers on hover and in a table
 * below it; table cells carry data-key="row|column" so that tests can read them.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("dashboard-config").textContent);
  let current = JSON.parse(document.getElementById("dashboard-data").textContent);

  // Numbers as the terminal tables print them (Python's format): the exact binary value of
  // the number rounded half-even, thousands separators. Intl.NumberFormat alone would round
  // the shortest decimal instead (120.185 is 120.18500000000000227... and prints 120.19).
  const formats = {};
  function formatter(key, options) {
    if (!formats[key]) {
      formats[key] = new Intl.NumberFormat("en-US", Object.assign({ roundingMode: "halfEven" }, options));
    }
    return formats[key];
  }
  function rounded(v, digits) {
    if (Math.abs(v) >= 1e21) return v;  // toFixed turns exponential there: let Intl round it
    // toFixed(100) is the exact decimal expansion of the double (every double has one that
    // ends within 1074 digits; those beyond 100 are zeros for any amount a report holds).
    const [whole, part] = Math.abs(v).toFixed(100).split(".");
    const kept = part.slice(0, digits);
    const rest = part.slice(digits);
    let units = BigInt(whole + kept);
    const last = Number((whole + kept).slice(-1));
    if (rest[0] > "5" || (rest[0] === "5" && (/[1-9]/.test(rest.slice(1)) || last % 2 === 1))) {
      units += 1n;
    }
    let text = units.toString().padStart(digits + 1, "0");
    if (digits) text = text.slice(0, -digits) + "." + text.slice(-digits);
    return (v < 0 || Object.is(v, -0) ? "-" : "") + text;
  }
  function defined(v) { return v !== null && v !== undefined && Number.isFinite(v); }
  function money(v) {
    return defined(v) ? formatter("money", { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(rounded(v, 2)) : "-";
  }
  function count(v) {
    return defined(v) ? formatter("count", { maximumFractionDigits: 0 }).format(rounded(v, 0)) : "-";
  }
  function fixed(v, digits) {
    return defined(v) ? formatter("fixed" + digits, {
      minimumFractionDigits: digits, maximumFractionDigits: digits, useGrouping: false,
    }).format(rounded(v, digits)) : "-";
  }
  // Percentages scale by a float multiplication, as Python's "{:.1%}" does, so both agree.
  function pct(v) { return defined(v) ? fixed(v * 100, 1) + "%" : "-"; }
  function pts(v) {
    return defined(v) ? formatter("pts", {
      minimumFractionDigits: 1, maximumFractionDigits: 1, signDisplay: "always", useGrouping: false,
    }).format(rounded(v * 100, 1)) + " pts" : "-";  // v * 100: the same float product as Python's
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  const LONG_TABLE = 30;
  const DRAWN_EDGE = 0.05;

  // A table: a caption, header cells, then rows of [key, cells]; a cell is [column key, text].
  function table(name, caption, headers, rows) {
    const head = el("tr", {}, headers.map((h) => el("th", {}, [h])));
    const body = rows.map(([key, cells]) => el("tr", { "data-row": key }, [
      el("th", { scope: "row" }, [key]),
      ...cells.map(([column, text]) => el("td", { "data-key": key + "|" + column }, [text])),
    ]));
    const t = el("table", { class: "numbers", "data-table": name },
      [el("caption", {}, [caption]), el("thead", {}, [head]), el("tbody", {}, body)]);
    if (rows.length <= LONG_TABLE) return t;
    // Long tables fold away behind their caption; the numbers are all there.
    return el("details", { class: "numbers" }, [el("summary", {}, [caption + " (" + rows.length + " rows)"]), t]);
  }

  // One colour per model wherever it appears (plotly would colour by trace order).
  const palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const knownModels = ["first_touch", "last_touch", "last_non_direct", "linear", "position_based", "time_decay", "markov", "shapley"];
  function modelColour(model) {
    const i = knownModels.indexOf(model);
    return palette[(i < 0 ? knownModels.length + (model.length % 2) : i) % palette.length];
  }

  const layoutBase = {
    margin: { l: 60, r: 20, t: 40, b: 60 },
    font: { family: "system-ui, sans-serif", size: 12 },
    paper_bgcolor: "#ffffff",
    plot_bgcolor: "#ffffff",
    legend: { orientation: "h", y: -0.25 },
    hoverlabel: { namelength: -1 },
  };
  function layout(title, extra) {
    return Object.assign({}, layoutBase, { title: { text: title, x: 0 } }, extra || {});
  }
  const plotConfig = { displaylogo: false, responsive: true, staticPlot: false };

  function chart(container, id, traces, lay) {
    let div = container.querySelector("#" + id);
    if (!div) {
      div = el("div", { id: id, class: "chart" });
      container.append(div);
    }
    Plotly.react(div, traces, lay, plotConfig);
    return div;
  }

  function section(id) {
    const node = document.getElementById(id);
    node.querySelectorAll("details.numbers, table.numbers, p.note").forEach((t) => t.remove());
    return node;
  }

  function missing(id, why) {
    const node = document.getElementById(id);
    node.querySelectorAll(".chart, details.numbers, table.numbers, p.note").forEach((t) => t.remove());
    node.append(el("p", { class: "note" }, [why]));
  }

  function note(node, text) { node.append(el("p", { class: "note" }, [text])); }

  // ---- views -------------------------------------------------------------------------------

  function drawModels(data) {
    const m = data.models;
    if (!m) return missing("view-models", "No attribution data in this source.");
    const node = section("view-models");
    // With intervals (attribute --ci): error bars from low to high, and "low to high" in tables.
    const iv = m.intervals;
    const level = m.confidence ? Math.round(m.confidence.level * 100) + "% interval" : "";
    function bounds(kind, model, ch) { return iv && iv[kind][model] ? iv[kind][model][ch] : null; }
    function errors(kind, model, values) {
      if (!iv) return undefined;
      const b = m.channels.map((ch) => bounds(kind, model, ch));
      return { type: "data", symmetric: false, visible: true,
        array: b.map((x, i) => (x ? x[1] - values[i] : 0)),
        arrayminus: b.map((x, i) => (x ? values[i] - x[0] : 0)) };
    }
    function withInterval(kind, model, ch, v) {
      const b = bounds(kind, model, ch);
      return b ? money(v) + " (" + money(b[0]) + " to " + money(b[1]) + ")" : money(v);
    }
    chart(node, "chart-models-value", m.models.map((model) => {
      const y = m.channels.map((ch) => m.value[model][ch]);
      return {
        type: "bar", name: model, x: m.channels, y: y, error_y: errors("value", model, y),
        marker: { color: modelColour(model) },
        hovertemplate: "%{x}<br>" + model + ": %{y:,.2f}<extra></extra>",
      };
    }), layout("Value credited per channel and model" + (iv ? " (bars: " + level + ")" : ""),
      { barmode: "group" }));
    node.append(table("models-value", "Value credited" + (iv ? " (" + level + ")" : ""),
      ["channel", ...m.models], m.channels.map((ch) => [ch, m.models.map((model) =>
        [model, withInterval("value", model, ch, m.value[model][ch])])])));
    node.append(table("models-conversions", "Conversions credited" + (iv ? " (" + level + ")" : ""),
      ["channel", ...m.models], m.channels.map((ch) => [ch, m.models.map((model) =>
        [model, withInterval("conversions", model, ch, m.conversions[model][ch])])])));
    if (iv) {
      note(node, "Intervals: " + m.confidence.method + ", " + m.confidence.resamples +
        " resamples, seed " + m.confidence.seed + ".");
    }
    if (m.change_vs_baseline) {
      const others = m.models.filter((model) => model !== m.baseline);
      chart(node, "chart-models-change", others.map((model) => ({
        type: "bar", name: model, x: m.channels, marker: { color: modelColour(model) },
        y: m.channels.map((ch) => { const v = m.change_vs_baseline[model][ch]; return defined(v) ? v * 100 : null; }),
        hovertemplate: "%{x}<br>" + model + ": %{y:+.1f}% vs " + m.baseline + "<extra></extra>",
      })), layout("Conversions credited: % change against " + m.baseline, { barmode: "group", yaxis: { ticksuffix: "%" } }));
      node.append(table("models-change", "Conversions credited: change against " + m.baseline, ["channel", ...others],
        m.channels.map((ch) => [ch, others.map((model) => [model, pct(m.change_vs_baseline[model][ch])])])));
    } else {
      note(node, "No last_touch model in this data: no % change against it.");
    }
  }

  function drawPaths(data) {
    const p = data.paths;
    if (!p) return missing("view-paths", "No path data in this source.");
    const node = section("view-paths");
    const labels = p.top_paths.map((r) => r.path.join(" > "));
    chart(node, "chart-paths-top", [{
      type: "bar", orientation: "h", x: p.top_paths.map((r) => r.conversions), y: labels,
      customdata: p.top_paths.map((r) => r.value),
      hovertemplate: "%{y}<br>conversions: %{x:,.2f}<br>value: %{customdata:,.2f}<extra></extra>",
    }], layout("Top conversion paths", { yaxis: { autorange: "reversed", automargin: true }, height: 520 }));
    node.append(table("paths-top", "Top conversion paths", ["path", "journeys", "conversions", "value"],
      p.top_paths.map((r, i) => [labels[i], [["journeys", count(r.journeys)], ["conversions", money(r.conversions)], ["value", money(r.value)]]])));
    chart(node, "chart-paths-length", [{
      type: "bar", x: p.lengths.map((r) => r.touches), y: p.lengths.map((r) => r.conversions),
      hovertemplate: "%{x} touches: %{y:,.2f} conversions<extra></extra>",
    }], layout("Path length (touches before conversion)", { xaxis: { type: "category" } }));
    node.append(table("paths-length", "Conversions by path length", ["touches", "conversions", "value"],
      p.lengths.map((r) => [r.touches, [["conversions", money(r.conversions)], ["value", money(r.value)]]])));
    if (p.time_lag) {
      chart(node, "chart-paths-lag", [{
        type: "bar", x: p.time_lag.map((r) => r.lag), y: p.time_lag.map((r) => r.conversions),
        hovertemplate: "%{x}: %{y:,.2f} conversions<extra></extra>",
      }], layout("Time lag: first touch to conversion", { xaxis: { type: "category" } }));
      node.append(table("paths-lag", "Conversions by days from first touch", ["days", "conversions", "value"],
        p.time_lag.map((r) => [r.lag, [["conversions", money(r.conversions)], ["value", money(r.value)]]])));
    } else {
      note(node, "Time lag needs touch times: path files do not have them.");
    }
  }

  function drawMarkov(data) {
    const mk = data.markov;
    if (!mk) return missing("view-markov", "No Markov model in this data.");
    const node = section("view-markov");
    chart(node, "chart-markov-effects", [{
      type: "bar", x: mk.channels, y: mk.channels.map((ch) => mk.removal_effect[ch]),
      hovertemplate: "%{x}: removal effect %{y:.4f}<extra></extra>",
    }], layout("Markov removal effects (conversion probability " + fixed(mk.conversion_probability, 4) + ")"));
    node.append(table("markov-effects", "Removal effects", ["channel", "removal effect", "value removal effect"],
      mk.channels.map((ch) => [ch, [["removal_effect", fixed(mk.removal_effect[ch], 4)], ["removal_effect_value", fixed(mk.removal_effect_value[ch], 4)]]])));
    // The graph: states on a circle, start on the left, conversion and null on the right.
    const states = [...new Set(mk.edges.flatMap((e) => [e.from, e.to]))];
    const inner = states.filter((s) => !["(start)", "(conversion)", "(null)"].includes(s));
    const pos = {};
    inner.forEach((s, i) => {
      const a = Math.PI / 2 - (2 * Math.PI * i) / Math.max(inner.length, 1);
      pos[s] = [Math.cos(a), Math.sin(a)];
    });
    pos["(start)"] = [-1.8, 0]; pos["(conversion)"] = [1.8, 0.5]; pos["(null)"] = [1.8, -0.5];
    const drawn = mk.edges.filter((e) => e.probability >= DRAWN_EDGE || e.to === "(conversion)" || e.to === "(null)");
    const edgeTraces = drawn.map((e) => {
      const a = pos[e.from] || [0, 0], b = pos[e.to] || [0, 0];
      return { type: "scatter", mode: "lines", x: [a[0], b[0]], y: [a[1], b[1]], hoverinfo: "skip", showlegend: false,
        line: { width: 0.5 + 8 * e.probability, color: "rgba(72, 101, 129, " + (0.25 + 0.6 * e.probability) + ")" } };
    });
    const mids = {
      x: drawn.map((e) => { const a = pos[e.from] || [0, 0], b = pos[e.to] || [0, 0]; return a[0] + (b[0] - a[0]) * 0.6; }),
      y: drawn.map((e) => { const a = pos[e.from] || [0, 0], b = pos[e.to] || [0, 0]; return a[1] + (b[1] - a[1]) * 0.6; }),
      text: drawn.map((e) => e.from + " → " + e.to + "<br>probability " + fixed(e.probability, 4) + "<br>count " + count(e.count)),
    };
    const nodes = Object.keys(pos).filter((s) => states.includes(s));
    chart(node, "chart-markov-graph", [
      ...edgeTraces,
      { type: "scatter", mode: "markers", x: mids.x, y: mids.y, text: mids.text, marker: { size: 6, color: "#243b53" }, hovertemplate: "%{text}<extra></extra>", showlegend: false },
      { type: "scatter", mode: "markers+text", x: nodes.map((s) => pos[s][0]), y: nodes.map((s) => pos[s][1]), text: nodes, textposition: "top center", marker: { size: 18, color: "#1f77b4" }, hovertemplate: "%{text}<extra></extra>", showlegend: false },
    ], layout("Transition graph: edges of probability 5% or more and every exit, thicker when likelier (hover the dot near an edge's end)", {
      xaxis: { visible: false }, yaxis: { visible: false, scaleanchor: "x" }, height: 560,
    }));
    node.append(table("markov-edges", "Transition probabilities", ["from → to", "probability", "count"],
      mk.edges.map((e) => [e.from + " → " + e.to, [["probability", fixed(e.probability, 4)], ["count", count(e.count)]]])));
  }

  function drawRfm(data) {
    const r = data.rfm;
    if (!r) return missing("view-rfm", "No customer analytics in this source.");
    const node = section("view-rfm");
    const scores = ["1", "2", "3", "4", "5"];
    if (r.grid) {
      chart(node, "chart-rfm-grid", [{
        type: "heatmap", x: scores.map((f) => "F" + f), y: scores.map((s) => "R" + s),
        z: scores.map((rs) => scores.map((fs) => r.grid[rs][fs])),
        text: scores.map((rs) => scores.map((fs) => count(r.grid[rs][fs]))), texttemplate: "%{text}",
        colorscale: "Blues", reversescale: true, hovertemplate: "%{y} %{x}: %{z:,} customers<extra></extra>",
      }], layout("Recency (rows) x frequency (columns): customers", { height: 420 }));
      node.append(table("rfm-grid", "Customers by recency and frequency score (5 best)", ["recency \\ frequency", ...scores.map((f) => "F" + f)],
        scores.slice().reverse().map((rs) => ["R" + rs, scores.map((fs) => ["F" + fs, count(r.grid[rs][fs])])])));
    } else {
      note(node, "The R x F grid needs every customer's scores (report --customers).");
    }
    const segs = Object.keys(r.segments);
    chart(node, "chart-rfm-segments", [{
      type: "bar", x: segs, y: segs.map((s) => r.segments[s]), hovertemplate: "%{x}: %{y:,} customers<extra></extra>",
    }], layout("Customers per segment (" + count(r.active_customers) + " active)"));
    node.append(table("rfm-segments", "Customers per segment", ["segment", "customers"], segs.map((s) => [s, [["customers", count(r.segments[s])]]])));
    const grades = Object.keys(r.grades);
    chart(node, "chart-rfm-grades", [{
      type: "bar", x: grades, y: grades.map((g) => r.grades[g]), hovertemplate: "grade %{x}: %{y:,} customers<extra></extra>",
    }], layout("Customers per grade (A best)"));
    node.append(table("rfm-grades", "Customers per grade", ["grade", "customers"], grades.map((g) => [g, [["customers", count(r.grades[g])]]])));
    if (r.movement) {
      const from = Object.keys(r.movement.grades);
      const to = [...new Set(from.flatMap((f) => Object.keys(r.movement.grades[f])))].sort();
      chart(node, "chart-rfm-movement", [{
        type: "heatmap", x: to.map((t) => "to " + t), y: from.map((f) => "from " + f),
        z: from.map((f) => to.map((t) => r.movement.grades[f][t] || 0)),
        text: from.map((f) => to.map((t) => count(r.movement.grades[f][t] || 0))), texttemplate: "%{text}",
        colorscale: "Greens", reversescale: true, hovertemplate: "%{y} %{x}: %{z:,} customers<extra></extra>",
      }], layout("Grade movement " + r.movement.from + " to " + r.movement.to, { height: 420, yaxis: { automargin: true } }));
      node.append(table("rfm-movement", "Grade movement (rows: from)", ["from \\ to", ...to], from.map((f) => [f, to.map((t) => [t, count(r.movement.grades[f][t] || 0)])])));
    }
    const ret = data.retention;
    if (ret) {
      node.append(table("retention", "Retention " + ret.from + " to " + ret.to, ["retention", "value"], [
        ["active at start", [["value", count(ret.customers_at_start)]]],
        ["active at end", [["value", count(ret.customers_at_end)]]],
        ["new customers", [["value", count(ret.new_customers)]]],
        ["retention rate", [["value", pct(ret.retention_rate)]]],
      ]));
      if (!defined(ret.retention_rate)) note(node, "Retention rate: the log is shorter than the RFM window, so it would be 100% by construction.");
    }
  }

  function drawClv(data) {
    const c = data.clv;
    if (!c) return missing("view-clv", "No customer analytics in this source.");
    const node = section("view-clv");
    const segs = Object.keys(c.segments);
    const wk = count(c.horizon_weeks);
    chart(node, "chart-clv", [
      { type: "bar", name: "historical mean", x: segs, y: segs.map((s) => c.segments[s].historical_mean), hovertemplate: "%{x}<br>historical mean %{y:,.2f}<extra></extra>" },
      { type: "bar", name: "forecast mean (" + wk + " weeks)", x: segs, y: segs.map((s) => c.segments[s].forecast_mean), hovertemplate: "%{x}<br>forecast mean %{y:,.2f}<extra></extra>" },
    ], layout("Lifetime value per customer, by segment", { barmode: "group" }));
    node.append(table("clv", "Lifetime value per segment", ["segment", "customers", "historical revenue", "historical mean", "forecast revenue", "forecast mean"],
      segs.map((s) => { const r = c.segments[s]; return [s, [
        ["customers", count(r.customers)], ["historical_revenue", money(r.historical_revenue)], ["historical_mean", money(r.historical_mean)],
        ["forecast_revenue", money(r.forecast_revenue)], ["forecast_mean", money(r.forecast_mean)],
      ]]; })));
    note(node, "Forecast over " + wk + " weeks: " + c.forecast_status);
  }

  function drawHoldout(data) {
    const h = data.holdout;
    if (!h || !h.rows.length) return missing("view-holdout", "No holdout group in this data.");
    const node = section("view-holdout");
    const labels = h.rows.map((r) => r.experiment + " " + r.period);
    chart(node, "chart-holdout", [{
      type: "bar", x: labels, y: h.rows.map((r) => r.incremental_revenue),
      marker: { color: h.rows.map((r) => (r.underpowered ? "#c0c5ce" : "#2b8a3e")) },
      error_y: {
        type: "data", symmetric: false,
        array: h.rows.map((r) => (r.incremental_revenue_ci ? r.incremental_revenue_ci[1] - r.incremental_revenue : 0)),
        arrayminus: h.rows.map((r) => (r.incremental_revenue_ci ? r.incremental_revenue - r.incremental_revenue_ci[0] : 0)),
      },
      customdata: h.rows.map((r) => [pts(r.conversion_lift), pct(r.conversion_lift_relative), r.underpowered ? "underpowered" : "ok"]),
      hovertemplate: "%{x}<br>incremental revenue %{y:,.2f}<br>lift %{customdata[0]} (relative %{customdata[1]})<br>%{customdata[2]}<extra></extra>",
    }], layout("Incremental revenue with its 95% interval (grey: underpowered)"));
    node.append(table("holdout", "Holdout lift, overall, per campaign and per period", ["experiment / period", "treated", "control", "lift (abs.)", "lift (rel.)", "MDE lift (abs.)", "incremental revenue", "95% low", "95% high", "MDE revenue", "power"],
      h.rows.map((r, i) => [labels[i], [
        ["n_treated", count(r.n_treated)], ["n_control", count(r.n_control)],
        ["conversion_lift", pts(r.conversion_lift)], ["conversion_lift_relative", pct(r.conversion_lift_relative)],
        ["min_detectable_conversion_lift", pts(r.min_detectable_conversion_lift)],
        ["incremental_revenue", money(r.incremental_revenue)],
        ["ci_low", money(r.incremental_revenue_ci ? r.incremental_revenue_ci[0] : null)],
        ["ci_high", money(r.incremental_revenue_ci ? r.incremental_revenue_ci[1] : null)],
        ["min_detectable_incremental_revenue", money(r.min_detectable_incremental_revenue)],
        ["power", r.underpowered ? "underpowered" : "ok"],
      ]])));
    note(node, "Membership by " + h.membership + "; absolute lifts are percentage points, relative lifts are against the control rate.");
    const cal = h.calibration || [];
    if (cal.length) {
      function span(pair, show) { return pair ? show(pair[0]) + " to " + show(pair[1]) : "-"; }
      node.append(table("holdout-calibration",
        "Incrementality calibration: incremental revenue / credited CRM revenue, per model",
        ["experiment / period / model", "incremental revenue", "95% interval", "credited", "factor", "factor 95%", "calibrated", "power"],
        cal.map((r) => [r.experiment + " " + r.period + " " + r.model, [
          ["incremental_revenue", money(r.incremental_revenue)],
          ["incremental_revenue_ci", span(r.incremental_revenue_ci, money)],
          ["credited_revenue", money(r.credited_revenue)],
          ["incrementality_factor", fixed(r.incrementality_factor, 3)],
          ["incrementality_factor_ci", span(r.incrementality_factor_ci, (v) => fixed(v, 3))],
          ["calibrated_revenue", money(r.calibrated_revenue)],
          ["power", r.underpowered ? "underpowered" : "ok"],
        ]])));
      note(node, "Factor: the share of what a model credits to CRM that the holdout shows was incremental (treatment group only); calibrated credit = credited x factor. Underpowered holdouts give wide factor intervals.");
    }
  }

  function drawCampaigns(data) {
    const c = data.campaigns;
    if (!c || !Object.keys(c.campaigns).length) return missing("view-campaigns", "No campaign in this data.");
    const node = section("view-campaigns");
    const names = Object.keys(c.campaigns);
    const model = c.models.includes("last_touch") ? "last_touch" : c.models[0];
    chart(node, "chart-campaigns", [
      { type: "bar", name: "cost", x: names, marker: { color: "#334e68" }, y: names.map((n) => c.campaigns[n].cost), hovertemplate: "%{x}<br>cost %{y:,.2f}<extra></extra>" },
      ...c.models.map((m) => ({
        type: "bar", name: "revenue " + m, x: names, visible: m === model ? true : "legendonly",
        marker: { color: modelColour(m) },
        y: names.map((n) => ((c.campaigns[n].models[m] || {}).attributed_revenue)),
        hovertemplate: "%{x}<br>" + m + " revenue %{y:,.2f}<extra></extra>",
      })),
    ], layout("Cost and attributed revenue per campaign (click a legend entry for another model)", {
      barmode: "group", height: 520, xaxis: { automargin: true, tickangle: -60 }, legend: { orientation: "v", x: 1.01, y: 1 },
    }));
    node.append(table("campaign-funnel", "Campaign cost and email funnel", ["campaign", "cost", "delivered", "opens", "clicks", "leads", "open rate", "CTR", "CTOR"],
      names.map((n) => { const r = c.campaigns[n]; return [n, [
        ["cost", money(r.cost)], ["delivered", count(r.funnel.delivered)], ["opens", count(r.funnel.opens)],
        ["clicks", count(r.funnel.clicks)], ["leads", count(r.funnel.leads)],
        ["open_rate", pct(r.open_rate)], ["ctr", pct(r.ctr)], ["ctor", pct(r.ctor)],
      ]]; })));
    const rows = [];
    names.forEach((n) => Object.entries(c.campaigns[n].models).forEach(([m, e]) => rows.push([n + " / " + m, [
      ["attributed_revenue", money(e.attributed_revenue)], ["roi", pct(e.roi)],
      ["revenue_cost", e.revenue_cost_ratio_text || "-"], ["cac", money(e.cac)], ["cpl", money(e.cpl)],
      ["cpo", money(e.cpo)], ["conversion_rate", pct(e.conversion_rate)],
    ]])));
    node.append(table("campaign-economics", "Campaign economics per attribution model", ["campaign / model", "revenue", "ROI", "revenue:cost", "CAC", "CPL", "CPO", "conv. rate"], rows));
    note(node, "'-': cost figures of a campaign without a recorded cost; open rate and CTOR of a campaign without open tracking.");
  }

  function drawShare(data) {
    const s = data.share;
    if (!s) return missing("view-share", "No revenue data in this source.");
    const node = section("view-share");
    const periods = Object.keys(s.periods);
    const models = Object.keys(s.crm_share);
    chart(node, "chart-share", models.map((m) => ({
      type: "scatter", mode: "lines+markers", name: m, x: periods, line: { color: modelColour(m) }, marker: { color: modelColour(m) },
      y: periods.map((p) => { const v = s.periods[p].crm_share[m]; return defined(v) ? v * 100 : null; }),
      hovertemplate: "%{x} " + m + ": %{y:.1f}% of revenue<extra></extra>",
    })), layout("CRM share of revenue per " + s.granularity + " (" + (s.crm_channels || []).join(", ") + ")", { yaxis: { ticksuffix: "%" }, xaxis: { type: "category" } }));
    node.append(table("share", "Revenue and CRM share per period and model", ["period", "revenue", ...models],
      [...periods.map((p) => [p, [["revenue", money(s.periods[p].total_revenue)], ...models.map((m) => [m, pct(s.periods[p].crm_share[m])])]]),
       ["all time", [["revenue", money(s.total_revenue)], ...models.map((m) => [m, pct(s.crm_share[m])])]]]));
  }

  const views = [drawModels, drawPaths, drawMarkov, drawRfm, drawClv, drawHoldout, drawCampaigns, drawShare];

  function drawAll(data) {
    views.forEach((draw) => draw(data));
    const stamp = document.getElementById("generated");
    stamp.textContent = (data.as_of ? "data as of " + data.as_of + " · " : "") + "built " + data.generated_at;
    document.body.setAttribute("data-generated", data.generated_at);
  }

  drawAll(current);

  if (config.poll_url) {
    const status = document.getElementById("live");
    status.textContent = "live";
    const poll = async () => {
      try {
        const response = await fetch(config.poll_url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
        if (!response.ok) throw new Error("HTTP " + response.status);
        const fresh = await response.json();
        if (JSON.stringify(fresh) !== JSON.stringify(current)) {
          current = fresh;
          drawAll(current);
        }
        status.textContent = "live · checked " + new Date().toLocaleTimeString();
        status.className = "live ok";
      } catch (error) {
        status.textContent = "live · update failed (" + error.message + "), retrying";
        status.className = "live failed";
      }
    };
    setInterval(poll, config.poll_seconds * 1000);
  }
})();
