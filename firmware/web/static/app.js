// The station's page. Everything arrives by server push (Server-Sent Events on
// api/v1/events): no timer, no polling. Text from the station or the CSMS is
// only ever put in the page as text (textContent), never as markup.
"use strict";

const WINDOW_MS = 10 * 60 * 1000; // the power chart shows the last 10 minutes
const KEEP_MS = 15 * 60 * 1000;
const MAX_FRAMES = 200;
const AMBER = ["Preparing", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved"];
const V201 = "2.0.1";

const page = {
  controls: null, // bench controls (simulated / emulated backend), null on a board
  state: null,
  now: Date.now(),
  uptime: null,
  power: [], // [time ms, [watts per connector]]
  frames: [], // newest last
  held: [], // frames that came while the log was paused
  paused: false,
  actions: new Set(),
  cards: new Map(),
};

const $ = (selector, root = document) => root.querySelector(selector);
const field = (root, name) => $(`[data-field="${name}"]`, root);

function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

const pad = (n) => String(n).padStart(2, "0");

function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const hms = `${Math.floor((s % 86400) / 3600)}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
  return days ? `${days}d ${hms}` : hms;
}

function watts(w) {
  if (w === null || w === undefined) return "–";
  return Math.abs(w) >= 1000 ? `${(w / 1000).toFixed(2)} kW` : `${Math.round(w)} W`;
}

function energy(wh) {
  if (wh === null || wh === undefined) return "–";
  return Math.abs(wh) >= 1000 ? `${(wh / 1000).toFixed(2)} kWh` : `${wh.toFixed(0)} Wh`;
}

function amps(a) {
  return a === null || a === undefined ? "–" : `${Number(a).toFixed(1)} A`;
}

function statusClass(el, prefix, status) {
  for (const c of [...el.classList]) if (c.startsWith(prefix)) el.classList.remove(c);
  if (status) el.classList.add(prefix + status);
}

// ------------------------------------------------------------------ station

function linkText(st) {
  const link = st.link || { state: st.connected ? "connected" : "connecting" };
  const since = link.since ? Date.parse(link.since) : null;
  if (link.state === "connected") return since ? `connected since ${clock(since)}` : "connected";
  let text = since ? `offline since ${clock(since)}` : "offline";
  if (link.state === "connecting") text += ", connecting";
  if (link.retry_at) {
    const wait = Math.max(0, Math.round((Date.parse(link.retry_at) - page.now) / 1000));
    text += `, next retry in ${wait} s`;
  }
  return text;
}

function renderStation() {
  const st = page.state.station;
  const root = $("#station");
  document.title = `${st.charge_point_id}: ${st.status || "station"}`;
  setText($("#cp-id"), st.charge_point_id);
  const pill = $("#link-pill");
  const state = st.link ? st.link.state : "connecting";
  const registered = st.registration === "Accepted";
  setText(pill, state === "connected" ? (registered ? "online" : "registering") : state);
  pill.className = `pill link-${state === "connected" && !registered ? "connecting" : state}`;
  const status = $("#station-status");
  setText(status, st.status || "");
  statusClass(status, "st-", st.status);
  setText(field(root, "firmware_version"), st.firmware_version || "–");
  setText(field(root, "ocpp_version"), st.ocpp_version || "–");
  setText(field(root, "csms_url"), st.csms_url || "–");
  const link = field(root, "link");
  setText(link, linkText(st));
  link.dataset.state = state;
  link.dataset.since = (st.link && st.link.since) || "";
  link.title = st.link && st.link.detail ? st.link.detail : "";
  setText(field(root, "registration"), st.registration || "none yet");
  const queue = field(root, "queue");
  setText(queue, `${st.queued} queued, ${st.dropped} dropped, ${st.thinned} thinned`);
  Object.assign(queue.dataset, { queued: st.queued, dropped: st.dropped, thinned: st.thinned });
  setText(field(root, "reconnects"), String(st.reconnects ?? "–"));
  setText(field(root, "hal_backend"), st.hal_backend || "–");
  setText(field(root, "station_faults"), st.faults && st.faults.length ? st.faults.join(", ") : "none");
  for (const job of ["firmware", "diagnostics"]) {
    const info = st[job];
    const active = info && info.status && info.status !== "Idle";
    $(`[data-job="${job}"]`, root).hidden = !active;
    const dd = field(root, `${job}_job`);
    dd.hidden = !active;
    if (active) {
      const part = info.total ? ` ${Math.round((100 * (info.bytes || 0)) / info.total)} %` : "";
      setText(dd, `${info.status}${part}`);
    }
  }
  renderUptime();
  if (page.controls) renderFaultButtons($(".faults", $("#station-controls")), page.controls.station_faults, st.faults || []);
}

function renderUptime() {
  const dd = field($("#station"), "uptime");
  if (page.uptime === null) return;
  setText(dd, duration(page.uptime));
  dd.dataset.seconds = String(page.uptime);
}

// ------------------------------------------------------------------ connectors

function card(id) {
  let root = page.cards.get(id);
  if (root) return root;
  root = $("#connector-tpl").content.firstElementChild.cloneNode(true);
  root.id = `connector-${id}`;
  root.dataset.connector = String(id);
  page.cards.set(id, root);
  $("#connectors").append(root);
  if (page.controls) wireControls(root, id);
  return root;
}

// Over OCPP 2.0.1 a connector is connector N of an EVSE and reports one of five
// connectorStatus values (Preparing ... Finishing are all Occupied): the pill shows what
// the CSMS is told, the station's own state goes next to it.
function renderConnector(c, index) {
  const root = card(c.id);
  const v201 = page.state.station.ocpp_version === V201 && c.evse_id !== null;
  setText(field(root, "id"), String(c.id));
  const status = field(root, "status");
  const reported = v201 ? c.connector_status : c.status;
  setText(status, reported || "–");
  statusClass(status, "st-", reported);
  setText(field(root, "state"), v201 && c.status && c.status !== reported ? c.status : "");
  root.dataset.status = c.status || "";
  const evse = field(root, "evse");
  evse.hidden = !v201;
  $('[data-label="evse"]', root).hidden = !v201;
  setText(evse, v201 ? `EVSE ${c.evse_id}, connector ${c.evse_connector_id}` : "–");
  const border = AMBER.includes(c.status) ? "amber" : c.status;
  statusClass(root, "st-border-", border);
  const error = $(".error-line", root);
  const fine = !c.error_code || c.error_code === "NoError";
  setText(field(root, "error_code"), fine ? "no error" : c.error_code);
  error.classList.toggle("ok", fine);
  setText(field(root, "pilot"), c.pilot || "–");
  setText(field(root, "relay"), c.relay_closed ? "closed" : "open");
  setText(field(root, "lock"), c.locked === null ? "no lock" : c.locked ? "locked" : "unlocked");
  const limit = c.limit_a === null || c.limit_a === undefined ? "" : ` (limit ${amps(c.limit_a)})`;
  setText(field(root, "offered"), amps(c.offered_current_a) + limit);
  setText(field(root, "power"), watts(c.power_w));
  setText(field(root, "session_energy"), energy(c.session_energy_wh));
  setText(field(root, "energy"), energy(c.energy_wh));
  setText(field(root, "id_tag"), c.id_tag || "–");
  setText(field(root, "transaction_id"), c.transaction_id === null ? "–" : String(c.transaction_id));
  setText(field(root, "faults"), c.faults.length ? c.faults.join(", ") : "none");
  if (page.controls) renderFaultButtons($(".faults", root), page.controls.connector_faults, c.faults);
  drawChart(root, index);
}

function drawChart(root, index) {
  const end = page.now;
  const start = end - WINDOW_MS;
  const points = page.power.filter(([t]) => t >= start).map(([t, w]) => [t, w[index] || 0]);
  const top = Math.max(1000, ...points.map(([, w]) => w));
  const step = top > 10000 ? 5000 : top > 2000 ? 1000 : 500;
  const max = Math.ceil(top / step) * step;
  const xy = points.map(([t, w]) => {
    const x = ((t - start) / WINDOW_MS) * 600;
    const y = 150 - (Math.max(0, w) / max) * 146;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  const svg = $("svg", root);
  $(".line", svg).setAttribute("points", xy.join(" "));
  const area = xy.length ? `M${xy[0].split(",")[0]},150L${xy.join("L")}L${xy[xy.length - 1].split(",")[0]},150Z` : "";
  $(".area", svg).setAttribute("d", area);
  const last = points.length ? points[points.length - 1][1] : 0;
  Object.assign(svg.dataset, { points: String(points.length), lastW: String(last), maxW: String(Math.max(0, ...points.map(([, w]) => w))) });
  setText(field(root, "chart_max"), watts(max));
}

// ------------------------------------------------------------------ bench controls

async function post(path, body, root) {
  const message = $(".message", root);
  setText(message, "");
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      setText(message, data.error || `HTTP ${response.status}`);
    }
  } catch (err) {
    setText(message, `station not reachable: ${err.message}`);
  }
}

function wireControls(root, id) {
  const controls = $(".controls", root);
  controls.hidden = false;
  for (const button of controls.querySelectorAll("[data-pilot]")) {
    button.addEventListener("click", () => post(`api/v1/sim/connectors/${id}`, { cp_state: button.dataset.pilot }, controls));
  }
  wireTap(controls, id);
}

// A tap on a connector's reader, or on the station's (connector null).
function wireTap(controls, id) {
  $(".tap", controls).addEventListener("submit", (event) => {
    event.preventDefault();
    const uid = event.target.elements.uid.value.trim();
    const body = id === null ? { uid } : { uid, connector: id };
    if (uid) post("api/v1/sim/rfid", body, controls);
  });
}

function renderFaultButtons(box, names, active) {
  if (!box.childElementCount) {
    const connector = box.closest("[data-connector]").dataset.connector;
    for (const name of names) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.fault = name;
      button.textContent = name.replaceAll("_", " ");
      button.addEventListener("click", () => {
        const on = button.getAttribute("aria-pressed") !== "true";
        post(`api/v1/sim/faults/${connector}`, { fault: name, active: on }, box.closest(".controls"));
      });
      box.append(button);
    }
  }
  for (const button of box.children) {
    const on = active.includes(button.dataset.fault);
    button.setAttribute("aria-pressed", String(on));
    button.title = on ? "active: click to clear" : "click to inject";
  }
}

// ------------------------------------------------------------------ OCPP log

function frameRow(f) {
  const li = document.createElement("li");
  li.dataset.action = f.action || "";
  li.dataset.kind = f.kind;
  li.dataset.dir = f.dir;
  const cells = [
    ["time", clock(f.at)],
    [`dir ${f.dir}`, f.dir === "out" ? "→" : "←"],
    [`kind kind-${f.kind}`, f.kind],
    ["action", f.action || "?"],
    ["payload", f.payload],
  ];
  for (const [cls, text] of cells) {
    const span = document.createElement("span");
    span.className = cls;
    span.textContent = text;
    li.append(span);
  }
  li.title = f.dir === "out" ? "station → CSMS" : "CSMS → station";
  li.addEventListener("click", () => li.classList.toggle("open"));
  li.hidden = !matches(li);
  return li;
}

const matches = (li) => !$("#log-filter").value || li.dataset.action === $("#log-filter").value;

function addFrames(frames) {
  const list = $("#log-rows");
  const filter = $("#log-filter");
  for (const f of frames) {
    if (f.action && !page.actions.has(f.action)) {
      page.actions.add(f.action);
      const options = [...filter.options].slice(1).map((o) => o.value).concat(f.action).sort();
      const chosen = filter.value;
      filter.replaceChildren(filter.options[0], ...options.map((a) => new Option(a, a)));
      filter.value = chosen;
    }
    list.prepend(frameRow(f));
  }
  while (list.childElementCount > MAX_FRAMES) list.lastElementChild.remove();
  renderLogCount();
}

function renderLogCount() {
  const shown = $("#log-rows").childElementCount;
  setText($("#log-count"), page.paused ? `paused, ${page.held.length} new` : `${shown} frames, newest first`);
}

function wireLog() {
  $("#log-filter").addEventListener("change", () => {
    for (const li of $("#log-rows").children) li.hidden = !matches(li);
  });
  const pause = $("#log-pause");
  pause.addEventListener("click", () => {
    page.paused = !page.paused;
    pause.setAttribute("aria-pressed", String(page.paused));
    setText(pause, page.paused ? "Resume" : "Pause");
    if (!page.paused) {
      const held = page.held.splice(0);
      addFrames(held.slice(-MAX_FRAMES));
    }
    renderLogCount();
  });
}

// ------------------------------------------------------------------ push channel

function render() {
  if (!page.state) return;
  renderStation();
  page.state.connectors.forEach(renderConnector);
}

wireTap($("#station-controls"), null);

function connect() {
  const push = $("#push");
  const events = new EventSource("api/v1/events");
  events.addEventListener("open", () => {
    push.className = "push live";
    setText(push, "live");
  });
  events.addEventListener("error", () => {
    push.className = "push down";
    const closed = events.readyState === EventSource.CLOSED;
    setText(push, closed ? "disconnected: reload the page" : "reconnecting…");
  });
  events.addEventListener("hello", (event) => {
    const hello = JSON.parse(event.data);
    page.controls = hello.controls;
    page.power = [];
    page.held = [];
    $("#log-rows").replaceChildren();
    $("#station-controls").hidden = !page.controls;
    for (const root of page.cards.values()) root.remove();
    page.cards.clear();
  });
  events.addEventListener("state", (event) => {
    page.state = JSON.parse(event.data);
    render();
  });
  events.addEventListener("frames", (event) => {
    const frames = JSON.parse(event.data);
    if (page.paused) {
      page.held.push(...frames);
      page.held.splice(0, Math.max(0, page.held.length - MAX_FRAMES));
      renderLogCount();
    } else {
      addFrames(frames);
    }
  });
  events.addEventListener("tick", (event) => {
    const tick = JSON.parse(event.data);
    page.now = tick.now;
    page.uptime = tick.uptime_s;
    page.power.push(...tick.power);
    const oldest = page.now - KEEP_MS;
    while (page.power.length && page.power[0][0] < oldest) page.power.shift();
    render();
  });
}

wireLog();
connect();
