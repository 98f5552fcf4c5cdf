// SPDX-License-Identifier: Apache-2.0
// intact-verifier fleet dashboard. Plain DOM, no framework. Every string
// that comes from the verifier (agents control ids, paths, reasons) is
// set with textContent, never parsed as HTML.
"use strict";

let pollMs = 2000; // set from the fleet data: half the attestation interval
const PAGE = 50;
const KNOWN_STATES = ["trusted", "failed", "unreachable", "gap-after-reboot", "enrolled"];
let timer = null;
let generation = 0;

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

async function getJSON(url) {
  const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (r.status === 401) {
    location.reload(); // the session ended: the server shows the login form
    throw new Error("logged out");
  }
  if (!r.ok) throw new Error(url + ": " + r.status);
  return r.json();
}

function fmtTime(t) {
  if (!t) return "—";
  const d = new Date(t);
  if (isNaN(d) || d.getUTCFullYear() < 2000) return "—";
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function ago(t, now) {
  if (!t) return "—";
  const s = Math.round((new Date(now) - new Date(t)) / 1000);
  if (!isFinite(s)) return "—";
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  if (s < 86400) return Math.round(s / 3600) + " h ago";
  return Math.round(s / 86400) + " d ago";
}

function stateCell(state, kind) {
  return el("span", { class: "state " + state, text: kind ? state + " (" + kind + ")" : state });
}

function setStatus(text) {
  document.getElementById("status").textContent = text;
}

function route() {
  const h = location.hash || "#/";
  if (h.startsWith("#/agent/")) return { view: "agent", id: decodeURIComponent(h.slice("#/agent/".length)) };
  if (h.startsWith("#/policies")) return { view: "policies" };
  const q = new URLSearchParams(h.includes("?") ? h.slice(h.indexOf("?") + 1) : "");
  return { view: "fleet", q: q.get("q") || "", state: q.get("state") || "", policy: q.get("policy") || "", offset: +q.get("offset") || 0 };
}

function fleetHash(r) {
  const q = new URLSearchParams();
  if (r.q) q.set("q", r.q);
  if (r.state) q.set("state", r.state);
  if (r.policy) q.set("policy", r.policy);
  if (r.offset) q.set("offset", r.offset);
  const s = q.toString();
  return "#/" + (s ? "?" + s : "");
}

// ---- fleet page --------------------------------------------------------

function buildFleet(r) {
  const view = document.getElementById("view");
  view.replaceChildren(
    el("h1", { text: "Fleet" }),
    el("div", { class: "cards", id: "cards" }),
    el("h2", { text: "Last hour" }),
    el("div", { class: "chart" },
      el("div", { class: "legend" }, el("span", { class: "l1", text: "— attestations per second" }), el("span", { class: "l2", text: "— late agents" }),
        el("span", { class: "scale", id: "chart-scale" })),
      svgEl("svg", { id: "chart", viewBox: "0 0 720 160", preserveAspectRatio: "none" })),
    el("h2", { text: "Most recent state changes" }),
    el("table", { id: "recent" }),
    el("h2", { text: "Agents" }),
    el("div", { class: "filters" },
      el("input", { id: "search", type: "search", placeholder: "search by id", value: r.q }),
      el("select", { id: "state-filter" }),
      el("select", { id: "policy-filter" })),
    el("div", { class: "pager", id: "pager" }),
    el("table", { id: "agents" }));
  const search = document.getElementById("search");
  let debounce = null;
  search.addEventListener("input", () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { location.hash = fleetHash({ ...route(), q: search.value, offset: 0 }); }, 250);
  });
  for (const id of ["state-filter", "policy-filter"]) {
    document.getElementById(id).addEventListener("change", (ev) => {
      const cur = route();
      if (id === "state-filter") cur.state = ev.target.value; else cur.policy = ev.target.value;
      cur.offset = 0;
      location.hash = fleetHash(cur);
    });
  }
}

function fillSelect(sel, options, current, allLabel) {
  const want = [""].concat(options);
  const have = Array.from(sel.options).map((o) => o.value);
  if (have.join("\n") !== want.join("\n")) {
    sel.replaceChildren(...want.map((v) => el("option", { value: v, text: v || allLabel })));
  }
  sel.value = current;
}

function renderCards(f, r) {
  const cards = document.getElementById("cards");
  const states = KNOWN_STATES.slice();
  for (const s of Object.keys(f.counts)) if (!states.includes(s)) states.push(s);
  const items = [["", "all agents", f.total]].concat(states.map((s) => [s, s, f.counts[s] || 0]), [["late", "late", f.late]]);
  cards.replaceChildren(...items.map(([state, label, n]) => {
    const c = el("div", { class: "card " + (state || "all") + (r.state === state ? " selected" : ""), id: "count-" + (state || "all"),
      onclick: () => { location.hash = fleetHash({ ...r, state, offset: 0 }); } },
      el("span", { class: "n", text: String(n) }), label);
    return c;
  }));
  fillSelect(document.getElementById("state-filter"), states.concat(["late"]), r.state, "every state");
  fillSelect(document.getElementById("policy-filter"), f.policies || [], r.policy, "every policy");
}

function renderChart(series) {
  const svg = document.getElementById("chart");
  const W = 720, H = 160, pad = 18;
  svg.replaceChildren(svgEl("line", { class: "axis", x1: 0, y1: H - pad, x2: W, y2: H - pad }));
  const scale = document.getElementById("chart-scale");
  if (!series || series.length < 2) {
    scale.textContent = "collecting samples…";
    return;
  }
  const t0 = new Date(series[0].t).getTime(), t1 = new Date(series[series.length - 1].t).getTime();
  const span = Math.max(t1 - t0, 1);
  const maxRate = Math.max(1, ...series.map((s) => s.attestations_per_s));
  const maxLate = Math.max(1, ...series.map((s) => s.late));
  const pts = (f, m) => series.map((s) => {
    const x = ((new Date(s.t).getTime() - t0) / span) * W;
    const y = H - pad - (f(s) / m) * (H - 2 * pad);
    return x.toFixed(1) + "," + y.toFixed(1);
  }).join(" ");
  svg.append(svgEl("polyline", { class: "line1", points: pts((s) => s.attestations_per_s, maxRate), id: "rate-line" }));
  svg.append(svgEl("polyline", { class: "line2", points: pts((s) => s.late, maxLate), id: "late-line" }));
  scale.textContent = "top of the chart: " + maxRate.toFixed(1) + "/s, " + maxLate + " late; " +
    Math.round(span / 60000) + " min shown";
}

function agentLink(id) {
  return el("a", { href: "#/agent/" + encodeURIComponent(id), class: "mono", text: id });
}

function renderRecent(f) {
  const t = document.getElementById("recent");
  t.replaceChildren(el("tr", {}, el("th", { text: "agent" }), el("th", { text: "state" }), el("th", { text: "since" }), el("th", { text: "reason" })),
    ...f.recent.map((a) => el("tr", { "data-id": a.id }, el("td", {}, agentLink(a.id)), el("td", {}, stateCell(a.state, a.kind)),
      el("td", { text: ago(a.since, f.time) }), el("td", { class: "mono reason", text: a.reason || "" }))));
}

function renderAgents(p, r, now) {
  const t = document.getElementById("agents");
  t.replaceChildren(el("tr", {}, el("th", { text: "agent" }), el("th", { text: "state" }), el("th", { text: "policy" }),
    el("th", { text: "last attested" }), el("th", { text: "reason" })),
  ...p.agents.map((a) => el("tr", { "data-id": a.id, "data-state": a.state },
    el("td", {}, agentLink(a.id)), el("td", {}, stateCell(a.state, a.kind), a.late ? el("span", { class: "state late", text: " late" }) : null),
    el("td", { class: "mono", text: a.policy }), el("td", { text: ago(a.last_attested, now) }),
    el("td", { class: "mono reason", text: a.reason || "" }))));
  const pager = document.getElementById("pager");
  const last = Math.min(p.offset + p.agents.length, p.total);
  pager.replaceChildren(
    el("button", { id: "prev", disabled: p.offset === 0 ? "" : null, onclick: () => { location.hash = fleetHash({ ...r, offset: Math.max(0, p.offset - PAGE) }); }, text: "‹ previous" }),
    el("span", { id: "page-info", text: p.total ? (p.offset + 1) + "–" + last + " of " + p.total : "no agent matches" }),
    el("button", { id: "next", disabled: last >= p.total ? "" : null, onclick: () => { location.hash = fleetHash({ ...r, offset: p.offset + PAGE }); }, text: "next ›" }));
}

async function loadFleet(r, gen) {
  const q = new URLSearchParams({ q: r.q, state: r.state, policy: r.policy, offset: r.offset, limit: PAGE });
  const [f, p] = await Promise.all([getJSON("/ui/api/fleet"), getJSON("/ui/api/agents?" + q)]);
  if (gen !== generation) return;
  if (f.refresh_ms) pollMs = f.refresh_ms;
  renderCards(f, r);
  renderChart(f.series);
  renderRecent(f);
  renderAgents(p, r, f.time);
  setStatus("updated " + fmtTime(f.time) + " · interval " + f.interval);
  if (!window.__fleetRenderedAt) window.__fleetRenderedAt = performance.now();
  document.body.dataset.ready = "fleet";
}

// ---- agent page --------------------------------------------------------

function buildAgent(r) {
  document.getElementById("view").replaceChildren(
    el("p", {}, el("a", { href: "#/", text: "‹ fleet" })),
    el("h1", { id: "agent-id", class: "mono", text: r.id }),
    el("dl", { class: "facts", id: "facts" }),
    el("h2", { text: "Why" }), el("ul", { id: "agent-reasons" }),
    el("h2", { text: "Timeline" }), el("ul", { class: "timeline", id: "timeline" }),
    el("h2", { text: "History (changes and heartbeats)" }), el("table", { id: "history" }),
    el("h2", { text: "Latest attestation result (EAR), decoded" }), el("pre", { id: "ear" }));
}

function fact(dl, name, value, mono) {
  dl.append(el("dt", { text: name }), el("dd", { class: mono ? "mono" : null }, value));
}

async function loadAgent(r, gen) {
  const a = await getJSON("/ui/api/agents/" + encodeURIComponent(r.id));
  if (gen !== generation) return;
  const dl = document.getElementById("facts");
  dl.replaceChildren();
  fact(dl, "state", el("span", { id: "agent-state", class: "state " + a.state, text: a.state + (a.kind ? " (" + a.kind + ")" : "") }));
  fact(dl, "since", ago(a.since, new Date()));
  fact(dl, "policy", a.policy, true);
  fact(dl, "address", a.addr, true);
  fact(dl, "enrolled", fmtTime(a.created));
  fact(dl, "last quote", fmtTime(a.last_attested) + (a.late ? " (late)" : ""));
  fact(dl, "last trusted", fmtTime(a.last_trusted));
  fact(dl, "attestations", String(a.attestations));
  fact(dl, "measurement list", a.log_source + ", PCR " + a.log_pcr + ", offset " + a.log_offset);
  fact(dl, "EK (SHA-256 of the public key)", a.ek_key || "—", true);
  fact(dl, "EK certificate", a.has_ek_cert ? "present" : "none");
  fact(dl, "AK public area", a.ak_public, true);
  const reasons = document.getElementById("agent-reasons");
  reasons.replaceChildren(...(a.reasons && a.reasons.length ? a.reasons : ["none"]).map((x) => el("li", { class: a.reasons && a.reasons.length ? "mono reason" : "", text: x })));
  const tl = document.getElementById("timeline");
  const items = (a.timeline || []).slice().reverse();
  tl.replaceChildren(...(items.length ? items.map((n) => el("li", {},
    el("span", { class: "when", text: fmtTime(n.time) }),
    el("strong", { text: n.type }), " ",
    n.state && n.state !== n.type ? stateCell(n.state, n.kind) : (n.kind ? "(" + n.kind + ")" : ""),
    n.previous_state ? el("span", { text: " (was " + n.previous_state + ")" }) : "",
    ...(n.reasons || []).map((x) => el("div", { class: "mono reason", text: x })))) : [el("li", { text: "no events yet" })]));
  const h = document.getElementById("history");
  h.replaceChildren(el("tr", {}, el("th", { text: "time" }), el("th", { text: "state" }), el("th", { text: "reasons" }), el("th", { text: "list offset" })),
    ...(a.history || []).map((x) => el("tr", {}, el("td", { text: fmtTime(x.time) + (x.heartbeat ? " ♥" : "") }), el("td", {}, stateCell(x.state, x.kind)),
      el("td", { class: "mono reason", text: (x.reasons || []).join("\n") }), el("td", { text: String(x.log_offset) }))));
  document.getElementById("ear").textContent = JSON.stringify(a.ear, null, 2);
  setStatus("updated " + fmtTime(new Date()));
  document.body.dataset.ready = "agent";
}

// ---- policies page -----------------------------------------------------

function buildPolicies() {
  document.getElementById("view").replaceChildren(el("h1", { text: "Runtime policies" }), el("table", { id: "policies" }));
}

async function loadPolicies(r, gen) {
  const ps = await getJSON("/ui/api/policies");
  if (gen !== generation) return;
  const t = document.getElementById("policies");
  t.replaceChildren(el("tr", {}, el("th", { text: "policy" }), el("th", { text: "agents" }), el("th", { text: "files listed" }), el("th", { text: "update windows open now" })),
    ...ps.map((p) => el("tr", { "data-name": p.name },
      el("td", { class: "mono", text: p.name }),
      el("td", {}, el("a", { href: fleetHash({ policy: p.name }), text: String(p.agents) }), " ",
        ...p.sample_agents.map((id) => el("span", {}, " ", agentLink(id)))),
      el("td", { text: p.error ? p.error : String(p.paths) }),
      el("td", {}, ...(p.open_windows.length ? p.open_windows.map((w) => el("div", { text: "until " + fmtTime(w.until) + (w.note ? " — " + w.note : "") })) : ["none"])))));
  setStatus("updated " + fmtTime(new Date()));
  document.body.dataset.ready = "policies";
}

// ---- router --------------------------------------------------------------

let built = "";
function show() {
  const r = route();
  const gen = ++generation;
  clearTimeout(timer);
  const key = r.view + (r.view === "agent" ? ":" + r.id : "");
  if (built !== key) {
    built = key;
    if (r.view === "fleet") buildFleet(r);
    else if (r.view === "agent") buildAgent(r);
    else buildPolicies();
  }
  const load = r.view === "fleet" ? loadFleet : r.view === "agent" ? loadAgent : loadPolicies;
  const tick = () => {
    load(r, gen).catch((e) => setStatus("error: " + e.message)).finally(() => {
      if (gen === generation) timer = setTimeout(tick, pollMs);
    });
  };
  tick();
}

window.addEventListener("hashchange", show);
document.addEventListener("DOMContentLoaded", show);
