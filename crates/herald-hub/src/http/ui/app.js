// The hub's debug page: one native EventSource driven by the subscribe form, a publish form
// posting to the hub, the live event log, and the subscriptions API's list when it is on.
"use strict";

const MAX_LOG_ROWS = 500;
// Chromium's and Firefox's reconnection delay when the server sends no `retry` field.
const BROWSER_RETRY_MS = 3000;
// The page's own retries once the browser has given up (a refused or failed connection).
const PAGE_RETRY_MS = [1000, 2000, 5000, 10000, 30000];
// The most of a refusal's body the page shows.
const MAX_REASON = 500;

const $ = (id) => document.getElementById(id);

const page = {
  config: { hub: "/.well-known/mercure", publish: true, anonymous: true, subscriptions: false, protocol: "both" },
  source: null,
  types: new Set(),
  lastId: "",
  events: 0,
  failures: 0,
  countdown: null,
  retryTimer: null,
};

function clock() {
  const now = new Date();
  const pad = (n, w) => String(n).padStart(w, "0");
  return `${pad(now.getHours(), 2)}:${pad(now.getMinutes(), 2)}:${pad(now.getSeconds(), 2)}.${pad(now.getMilliseconds(), 3)}`;
}

function lines(text) {
  return text.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
}

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
}

function addRow(cells, cls) {
  const log = $("log");
  const row = document.createElement("tr");
  row.className = cls ? `${cls} fresh` : "fresh";
  cells.forEach(([text, c]) => cell(row, text, c));
  log.insertBefore(row, log.firstChild);
  while (log.rows.length > MAX_LOG_ROWS) log.deleteRow(log.rows.length - 1);
  $("log-empty").textContent = "";
  return row;
}

function logEvent(event) {
  page.events += 1;
  $("event-count").textContent = String(page.events);
  if (event.lastEventId) {
    page.lastId = event.lastEventId;
    $("last-id-seen").textContent = event.lastEventId;
  }
  const row = addRow([[clock()], [event.type], [event.lastEventId || ""], [shown(event.data), "data"]]);
  row.dataset.type = event.type;
  row.dataset.id = event.lastEventId;
}

// The log keeps hundreds of rows: each shows at most this much of an event's data.
const MAX_SHOWN = 4096;

function shown(data) {
  if (data.length <= MAX_SHOWN) return data;
  return `${data.slice(0, MAX_SHOWN)}… (${data.length} characters in all)`;
}

function logMeta(text, bad) {
  addRow([[clock()], ["—"], [""], [text]], bad ? "meta bad" : "meta");
}

function setState(state, detail) {
  const el = $("state");
  el.textContent = state;
  el.dataset.state = state;
  el.className = `state ${state === "failed" ? "error" : state}`;
  el.title = detail || "";
  const active = page.source !== null || page.retryTimer !== null;
  $("disconnect").disabled = !active;
  $("connect").textContent = active ? "Reconnect" : "Connect";
}

function stopCountdown() {
  if (page.countdown) clearInterval(page.countdown);
  page.countdown = null;
  $("countdown").textContent = "";
}

// Shows "<what> in N s" until `ms` have passed.
function startCountdown(what, ms) {
  stopCountdown();
  const end = Date.now() + ms;
  const tick = () => {
    const left = Math.max(0, end - Date.now());
    $("countdown").textContent = left > 0 ? `${what} in ${(left / 1000).toFixed(1)} s` : `${what}…`;
    if (left === 0) stopCountdown();
  };
  tick();
  page.countdown = setInterval(tick, 100);
}

function listen(type) {
  if (!type || type === "message" || page.types.has(type)) return;
  page.types.add(type);
  if (page.source) page.source.addEventListener(type, logEvent);
}

// Mercure 0.x subscribes with topic=, lastEventID= and may carry its token in the URL;
// Mercure 1.0 with match= or match_urlpattern= and last_event_id=, and never a token in the
// URL (EventSource cannot send a header: a 1.0 page subscribes anonymously, or with the
// access-token cookie).
function modern() {
  return $("sub-protocol").value === "1";
}

function subscribeUrl(resumeFrom) {
  const params = new URLSearchParams();
  const matcher = $("sub-match-type").value === "urlpattern" ? "match_urlpattern" : "match";
  lines($("sub-topics").value).forEach((t) => params.append(modern() ? matcher : "topic", t));
  const token = $("sub-token").value.trim();
  if (token && !modern()) params.append("authorization", token);
  if (resumeFrom) params.append(modern() ? "last_event_id" : "lastEventID", resumeFrom);
  return `${page.config.hub}?${params}`;
}

function showProtocol() {
  const is1 = modern();
  $("sub-match-type-box").hidden = !is1;
  $("sub-topics-label").firstChild.textContent = is1 ? "Matchers " : "Topic selectors ";
  $("sub-token").disabled = is1;
  $("sub-token-hint").textContent = is1
    ? "1.0 takes no token in the URL: EventSource subscribes anonymously, or with the access-token cookie"
    : "optional JWT, sent as the authorization query parameter";
}

function closeSource() {
  if (page.source) page.source.close();
  page.source = null;
  if (page.retryTimer) clearTimeout(page.retryTimer);
  page.retryTimer = null;
  stopCountdown();
}

function openSource(resumeFrom) {
  closeSource();
  const source = new EventSource(subscribeUrl(resumeFrom));
  page.source = source;
  source.addEventListener("message", logEvent);
  page.types.forEach((type) => source.addEventListener(type, logEvent));
  setState("connecting");
  source.onopen = () => {
    page.failures = 0;
    showRefusal("");
    stopCountdown();
    setState("open");
    logMeta("connection open");
    refreshSubscriptions();
  };
  source.onerror = () => {
    if (page.source !== source) return;
    if (source.readyState === EventSource.CONNECTING) {
      // The browser reconnects by itself and sends Last-Event-ID.
      setState("connecting");
      logMeta("connection lost: the browser reconnects with Last-Event-ID");
      startCountdown("browser reconnects", BROWSER_RETRY_MS);
      return;
    }
    // The browser gave up (refused, wrong status or content type): retry from the page.
    source.close();
    page.source = null;
    const delay = PAGE_RETRY_MS[Math.min(page.failures, PAGE_RETRY_MS.length - 1)];
    page.failures += 1;
    page.retryTimer = setTimeout(() => {
      page.retryTimer = null;
      openSource(page.lastId);
    }, delay);
    setState("failed", "the hub refused or the connection failed");
    logMeta(`connection failed (attempt ${page.failures}); retrying in ${delay / 1000} s`, true);
    startCountdown("page retries", delay);
    refreshSubscriptions();
    explainFailure(source.url);
  };
}

// EventSource hides why a connection failed: ask the same URL once, read the status and the
// reason the hub gave, and show them. A stream that opens this time is closed at once.
async function explainFailure(url) {
  const abort = new AbortController();
  let reason;
  try {
    const response = await fetch(url, {
      headers: { Accept: "text/event-stream" },
      cache: "no-store",
      signal: abort.signal,
    });
    const type = response.headers.get("content-type") || "no content type";
    if (response.ok && type.startsWith("text/event-stream")) {
      abort.abort();
      reason = `the hub answers ${response.status} now: the failure was on the way (network, proxy)`;
    } else {
      const body = (await response.text()).trim().slice(0, MAX_REASON);
      const status = `${response.status} ${response.statusText}`.trim();
      reason = response.ok
        ? `the hub answered ${status} with ${type}, not text/event-stream`
        : `the hub answered ${status}: ${body}`;
    }
  } catch (error) {
    reason = `no answer from the hub: ${error.message || error}`;
  }
  if (page.source !== null || page.retryTimer === null) return; // reconnected or closed since
  showRefusal(reason);
  logMeta(reason, true);
  $("state").title = reason;
}

function showRefusal(reason) {
  const el = $("sub-refusal");
  el.textContent = reason;
  el.hidden = !reason;
}

function connect(e) {
  e.preventDefault();
  page.failures = 0;
  showRefusal("");
  $("sub-types").value.split(",").map((s) => s.trim()).forEach(listen);
  // `earliest` asks for every update the hub keeps, those published before Connect included.
  const lastId = $("sub-earliest").checked ? "earliest" : $("sub-last-id").value.trim();
  page.lastId = lastId; // the page's own retries resume from here, not from another subscription
  openSource(lastId);
}

function disconnect() {
  closeSource();
  showRefusal("");
  setState("closed");
  logMeta("closed by the page");
  setTimeout(refreshSubscriptions, 300);
}

async function publish(e) {
  e.preventDefault();
  const result = $("pub-result");
  const body = new URLSearchParams();
  lines($("pub-topics").value).forEach((t) => body.append("topic", t));
  body.append("data", $("pub-data").value);
  const type = $("pub-type").value.trim();
  const id = $("pub-id").value.trim();
  if (type) body.append("type", type);
  if (id) body.append("id", id);
  if ($("pub-private").checked) body.append("private", "on");
  listen(type);
  const headers = {};
  const token = $("pub-token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  result.className = "result";
  result.textContent = "publishing…";
  try {
    const response = await fetch(page.config.hub, { method: "POST", headers, body });
    const text = (await response.text()).trim();
    if (response.ok) {
      result.className = "result ok";
      result.textContent = `published as ${text}`;
    } else {
      result.className = "result bad";
      result.textContent = `${response.status} ${response.statusText}: ${text}`;
    }
  } catch (error) {
    result.className = "result bad";
    result.textContent = `the request failed: ${error}`;
  }
}

async function refreshSubscriptions() {
  if (!page.config.subscriptions) return;
  const list = $("subs-list");
  const note = $("subs-note");
  const headers = {};
  const token = $("sub-token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    const response = await fetch(`${page.config.hub}/subscriptions`, { headers });
    if (!response.ok) {
      list.replaceChildren();
      $("subs-count").textContent = "–";
      note.textContent = `${response.status}: ${(await response.text()).trim()} (the list needs a subscriber token covering ${page.config.hub}/subscriptions)`;
      return;
    }
    const doc = await response.json();
    const admin = $("admin-token").value.trim();
    const rows = doc.subscriptions.map((s) => {
      const row = document.createElement("tr");
      cell(row, s.topic ?? `${s.match_type}: ${s.match}`);
      cell(row, s.subscriber);
      cell(row, s.active ? "yes" : "no");
      const td = document.createElement("td");
      if (admin && page.config.control) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "secondary small disconnect-subscriber";
        button.textContent = "disconnect";
        button.dataset.subscriber = s.subscriber;
        button.addEventListener("click", () => disconnectSubscriber(s.subscriber));
        td.appendChild(button);
      }
      row.appendChild(td);
      return row;
    });
    list.replaceChildren(...rows);
    $("subs-count").textContent = String(rows.length);
    note.textContent = rows.length ? "" : "No active subscription.";
  } catch (error) {
    note.textContent = `cannot list subscriptions: ${error}`;
  }
}

// Ends a subscriber's stream through the control API: its browser reconnects by itself with
// Last-Event-ID, and misses nothing.
async function disconnectSubscriber(subscriber) {
  const result = $("admin-result");
  result.className = "result";
  result.textContent = `disconnecting ${subscriber}…`;
  try {
    const response = await fetch(`${page.config.hub}/control/disconnect`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${$("admin-token").value.trim()}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ subscriber }),
    });
    const text = (await response.text()).trim();
    if (response.ok) {
      result.className = "result ok";
      result.textContent = `${subscriber}: ${JSON.parse(text).message}`;
    } else {
      result.className = "result bad";
      result.textContent = `${response.status} ${response.statusText}: ${text}`;
    }
  } catch (error) {
    result.className = "result bad";
    result.textContent = `the request failed: ${error}`;
  }
  setTimeout(refreshSubscriptions, 300);
}

function clearLog() {
  $("log").replaceChildren();
  page.events = 0;
  $("event-count").textContent = "0";
  $("log-empty").textContent = "No event yet: connect, then publish.";
}

async function loadConfig() {
  try {
    const response = await fetch("/ui/config.json", { cache: "no-store" });
    if (response.ok) page.config = await response.json();
  } catch (error) {
    logMeta(`cannot read the page configuration: ${error}`, true);
  }
  const config = page.config;
  $("hub-url").textContent = new URL(config.hub, location.href).href;
  const dev = Boolean(config.publisherToken);
  $("mode").textContent = dev ? "development mode: tokens filled in" : "tokens not filled in";
  $("mode").classList.toggle("dev", dev);
  if (config.publisherToken) $("pub-token").value = config.publisherToken;
  if (config.subscriberToken) $("sub-token").value = config.subscriberToken;
  if (config.adminToken) $("admin-token").value = config.adminToken;
  if (!config.publish) {
    $("publish").disabled = true;
    $("pub-result").textContent = "This hub has no publisher key: publishing is off.";
  }
  $("subs-section").hidden = !config.subscriptions;
  if (config.protocol === "1") $("sub-protocol").value = "1";
  $("sub-protocol-row").hidden = config.protocol !== "both";
  showProtocol();
  refreshSubscriptions();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sub-form").addEventListener("submit", connect);
  $("disconnect").addEventListener("click", disconnect);
  $("pub-form").addEventListener("submit", publish);
  $("clear-log").addEventListener("click", clearLog);
  $("subs-refresh").addEventListener("click", refreshSubscriptions);
  $("sub-protocol").addEventListener("change", showProtocol);
  $("admin-token").addEventListener("change", refreshSubscriptions);
  $("sub-earliest").addEventListener("change", (e) => {
    $("sub-last-id").disabled = e.target.checked;
  });
  $("pub-data").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && !$("publish").disabled) {
      $("pub-form").requestSubmit();
    }
  });
  loadConfig();
});
