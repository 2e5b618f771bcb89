// hotdrop dashboard: request cards kept live from /api/events (Server-Sent Events).
// No framework and no build step: the DOM is built with createElement and textContent only.
"use strict";

const reasonWords = {
  missing_metadata: "Metadata is missing",
  invalid_metadata: "Metadata is not valid",
  invalid_sidecar: "The sidecar file cannot be read",
  no_matching_request: "No request matches this file",
  ambiguous_match: "More than one request matches this file",
  request_not_open: "The request takes no deliveries now",
  already_delivered: "This request was already delivered",
  unsupported_extension: "This kind of file is not accepted for this request",
  too_many_files: "More files than the request takes",
  unsafe_path: "Unsafe file (a link, pipe or device)",
  invalid_name: "The file name cannot be used on the server",
  remote_exists: "A file of that name is already on the server",
  checksum_mismatch: "The file does not match its checksum",
  keeps_changing: "The file keeps changing while it is sent",
  changed_during_upload: "The file changed while it was sent",
  auth_failed: "The server refused the login",
  host_key_unknown: "The server's host key is not trusted yet",
  host_key_changed: "The server's host key changed",
  permission_denied: "The server refused permission",
  no_space: "The server's disk is full",
  verify_mismatch: "The delivered copy did not verify",
  remote_hash_unavailable: "The server cannot compute a checksum",
  remote_error: "The server reported an error",
};

const requests = new Map(); // id ("" = File Bin) → request as /api/requests gives it
const board = document.getElementById("board");
const search = document.getElementById("search");
const group = document.getElementById("group");
const live = document.getElementById("live");
const banner = document.getElementById("banner");
const said = document.getElementById("said");
const problemsBox = document.getElementById("problems");
let reachable = true; // the destination, as /healthz and the destination.* events say

group.value = localStorage.getItem("hotdrop.group") || "title";

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = text;
  return e;
}

function bytes(n) {
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}

function duration(s) {
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${sec}s` : `${sec}s`;
}

function stateLabel(state) {
  return el("span", "state s-" + state, state);
}

function reasonBox(reason, failed) {
  const box = el("div", "reason" + (failed ? " failed" : ""));
  box.append(el("b", null, reasonWords[reason.code] || reason.code));
  box.append(el("span", null, reason.message));
  box.dataset.code = reason.code;
  return box;
}

// say shows what a button did (or why it did nothing) until the next click.
function say(text, bad) {
  said.textContent = text;
  said.classList.toggle("bad", !!bad);
  said.hidden = !text;
}

async function post(url, button) {
  if (button) button.disabled = true;
  try {
    const r = await fetch(url, { method: "POST", credentials: "same-origin" });
    if (r.status === 401) {
      if (confirm("This hotdrop wants its token (status.token_file) for retry and deliver. Log in now?")) location.href = "/login";
      return;
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) say(body.error || `The request failed (HTTP ${r.status}).`, true);
    else say(body.message || (button ? button.dataset.done : "") || "Done.");
  } catch (e) {
    say("hotdrop did not answer: " + e, true);
  } finally {
    if (button) button.disabled = false;
  }
}

// retryText is "retrying: CAUSE — next try in N s", counted down from next_try.
function retryText(rt) {
  const wait = Math.round((new Date(rt.next_try) - Date.now()) / 1000);
  const cause = (rt.reason || "a transient error").replace(/\.$/, "");
  return `retrying (attempt ${rt.attempt}): ${cause} — ` + (wait > 0 ? `next try in ${duration(wait)}` : "trying now");
}

function clock(t) {
  const d = new Date(t);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString() : d.toLocaleString();
}

// wrapName lets a long name wrap after its separators (_ . - / space), not mid-word.
function wrapName(cls, name) {
  const span = el("span", cls);
  for (const part of name.split(/(?<=[_.\-\/ ])/)) {
    span.append(document.createTextNode(part), document.createElement("wbr"));
  }
  span.title = name;
  return span;
}

function progressText(f) {
  if (f.state === "delivered") return "delivered " + clock(f.changed_at) + (f.remote_path ? " → " + f.remote_path : "");
  if (f.state !== "uploading") return "";
  const pct = f.size > 0 ? Math.floor((100 * (f.done || 0)) / f.size) : 0;
  let t = `${pct}% of ${bytes(f.size)}`;
  if (f.rate) t += ` · ${bytes(f.rate)}/s`;
  if (f.eta) t += ` · ETA ${duration(f.eta)}`;
  if (f.retrying) t += " · " + retryText(f.retrying);
  return t;
}

function fraction(f) {
  if (f.state === "delivered") return 1;
  if (f.state !== "uploading" || !f.size) return 0;
  return Math.min(1, (f.done || 0) / f.size);
}

// mediaText shows what the content check found: "25 fps · 1920x1080 · 0:10:00 · 5.1 · 48000 Hz".
function mediaText(m) {
  const parts = [];
  if (m.frame_rate) parts.push(m.frame_rate + " fps");
  if (m.resolution) parts.push(m.resolution);
  if (m.duration) {
    const s = Math.round(Number(m.duration));
    parts.push(`${Math.floor(s / 3600)}:${String(Math.floor(s / 60) % 60).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`);
  }
  if (m.channels) parts.push(m.channels);
  if (m.sample_rate) parts.push(m.sample_rate + " Hz");
  if (m.language) parts.push(m.language);
  return parts.join(" · ");
}

function fileItem(f) {
  const li = el("li", "file s-" + f.state);
  li.dataset.fileId = f.id;
  const head = el("div", "file-head");
  head.append(wrapName("file-name", f.name), stateLabel(f.state));
  li.append(head);
  const bar = el("div", "bar");
  const fill = el("div");
  fill.style.width = (100 * fraction(f)).toFixed(1) + "%";
  bar.append(fill);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", Math.round(100 * fraction(f)));
  bar.hidden = f.state !== "uploading" && f.state !== "delivered";
  li.append(bar, el("div", "rate", progressText(f)));
  if (f.media) li.append(el("div", "media", mediaText(f.media)));
  if (f.reason && (f.state === "held" || f.state === "failed" || f.state === "settling")) {
    li.append(reasonBox(f.reason, f.state === "failed"));
  } else if (f.why && !f.retrying) {
    li.append(el("div", "why", f.why));
  }
  // Only once the journal gave the file its id (a moment after a fast failure): a click
  // before then would ask to retry file 0 and do nothing.
  if ((f.state === "failed" || f.state === "held") && f.id) {
    const b = el("button", "retry-file", "Retry file");
    b.dataset.done = f.name + ": being tried again";
    b.onclick = () => post(`/api/files/${f.id}/retry`, b);
    li.append(b);
  }
  return li;
}

// sequenceItem is one frame sequence as one row: shot_010.[1001-2400].exr — 1,400 frames,
// 8.2 GiB, 1,388 delivered.
function sequenceItem(s) {
  const li = el("li", "file sequence s-" + s.state);
  const head = el("div", "file-head");
  head.append(el("span", "file-name", s.name), stateLabel(s.state));
  li.append(head);
  const frac = s.size ? Math.min(1, (s.delivered_size + (s.done || 0)) / s.size) : 0;
  const bar = el("div", "bar");
  const fill = el("div");
  fill.style.width = (100 * frac).toFixed(1) + "%";
  bar.append(fill);
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-valuenow", Math.round(100 * frac));
  li.append(bar, el("div", "rate", `${s.frames.toLocaleString()} frames · ${bytes(s.size)} · ${s.delivered.toLocaleString()} delivered`));
  if (s.reason && (s.state === "held" || s.state === "failed")) {
    li.append(reasonBox(s.reason, s.state === "failed"));
  }
  return li;
}

// why is the card's one line on what it waits for; a retry's countdown is kept current here.
function whyLine(r) {
  const f = (r.files || []).find((x) => x.retrying);
  return f ? retryText(f.retrying) : r.why || "";
}

function card(r) {
  const c = el("article", "card s-" + r.state);
  c.dataset.id = r.id;
  const head = el("div", "card-head");
  const title = r.bin ? "File Bin" : `${r.title || r.id}`;
  const files = r.files || [];
  const seqs = r.sequences || [];
  // The File Bin has no delivery state of its own: show whether anything there needs a person.
  const state = r.bin ? (files.some((f) => f.state === "held") || seqs.some((s) => s.state === "held") ? "held" : "waiting") : r.state;
  head.append(wrapName("card-title", title), stateLabel(state));
  c.append(head);
  if (!r.bin) {
    const bits = [r.id, r.source_type, r.language, r.package_id, r.status && r.status !== "open" ? "status: " + r.status : ""];
    c.append(el("div", "meta", bits.filter(Boolean).join(" · ")));
  }
  const count = files.length + (r.files_omitted || 0) + seqs.reduce((n, s) => n + s.frames, 0);
  const expected = r.files_expected ? `${count.toLocaleString()} of ${r.files_expected.toLocaleString()} file(s)` : `${count.toLocaleString()} file(s)`;
  c.append(el("div", "meta", expected));
  const why = whyLine(r);
  if (why && !r.bin) c.append(el("div", "why", why));
  if (files.length || seqs.length) {
    const ul = el("ul", "files");
    seqs.forEach((s) => ul.append(sequenceItem(s)));
    files.forEach((f) => ul.append(fileItem(f)));
    if (r.files_omitted) ul.append(el("li", "file omitted", `… and ${r.files_omitted.toLocaleString()} more files not listed`));
    c.append(ul);
  }
  if (!r.bin) {
    const actions = el("div", "actions");
    // A single file has its own Retry: one button, not two that do the same. A sequence has none
    // of its own, so a request with a held or failed sequence gets the request's.
    const seqTrouble = seqs.some((s) => s.state === "failed" || s.state === "held");
    if ((files.length > 1 || seqTrouble) && (seqTrouble || files.some((f) => f.state === "failed" || f.state === "held"))) {
      const b = el("button", "retry", "Retry all");
      b.dataset.done = r.id + ": its failed and held files are being tried again";
      b.onclick = () => post(`/api/requests/${encodeURIComponent(r.id)}/retry`, b);
      actions.append(b);
    }
    if (r.can_deliver) {
      const b = el("button", "deliver", "Deliver");
      b.title = "Release it now: stands in for the ready marker (or for auto_deliver = false); never overrides a hold";
      b.onclick = () => post(`/api/requests/${encodeURIComponent(r.id)}/deliver`, b);
      actions.append(b);
    }
    if (actions.childElementCount) c.append(actions);
  }
  return c;
}

function groupKey(r) {
  if (r.bin) return "File Bin";
  const k = group.value;
  return (k === "state" ? r.state : r[k]) || "(none)";
}

function matches(r, q) {
  if (!q) return true;
  const words = [r.title, r.package_id, r.id, r.source_type, r.language, r.why, r.bin ? "file bin" : ""];
  for (const f of r.files || []) {
    words.push(f.name, f.why);
    if (f.reason) words.push(f.reason.code, f.reason.message, reasonWords[f.reason.code]);
  }
  return words.some((s) => (s || "").toLowerCase().includes(q));
}

// stateOrder puts what needs a person first, then what moves, then what is done.
const stateOrder = ["failed", "held", "uploading", "ready", "settling", "waiting", "delivered"];

function render() {
  const q = search.value.trim().toLowerCase();
  const groups = new Map();
  let shown = 0;
  for (const r of requests.values()) {
    if (r.bin && !(r.files || []).length) continue;
    if (!matches(r, q)) continue;
    const k = groupKey(r);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(r);
    shown++;
  }
  board.replaceChildren();
  if (!shown) {
    board.append(el("p", "empty", requests.size ? "No request matches the search." : "No requests yet."));
  }
  const bin = "File Bin";
  const keys = [...groups.keys()].sort((a, b) =>
    (a === bin) - (b === bin) ||
    (group.value === "state" ? stateOrder.indexOf(a) - stateOrder.indexOf(b) : a.localeCompare(b)));
  for (const k of keys) {
    const sec = el("section", "group");
    sec.dataset.group = k;
    sec.append(el("h2", null, `${k} (${groups.get(k).length})`));
    const cards = el("div", "cards");
    groups.get(k).sort((a, b) => (a.id || "").localeCompare(b.id || "")).forEach((r) => cards.append(card(r)));
    sec.append(cards);
    board.append(sec);
  }
  // The counts follow the search: they describe the cards shown.
  const counts = {};
  let last = null;
  for (const r of requests.values()) {
    for (const f of r.files || []) if (f.state === "delivered" && (!last || f.changed_at > last)) last = f.changed_at;
    if (!r.bin && matches(r, q)) counts[r.state] = (counts[r.state] || 0) + 1;
  }
  document.getElementById("counts").textContent = stateOrder.filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`).join(" · ") +
    (q ? " (search)" : "");
  document.getElementById("last").textContent = last ? "last delivery " + clock(last) : "no delivery yet";
  const dest = document.getElementById("dest");
  dest.textContent = reachable ? "destination reachable" : "destination unreachable";
  dest.classList.toggle("off", !reachable);
}

async function health() {
  try {
    const r = await fetch("/healthz", { credentials: "same-origin" });
    reachable = r.status !== 503;
  } catch (e) { /* hotdrop itself is away: the live badge says so */ }
  render();
}

// showProblems keeps a refused config or requests file in sight until a reload succeeds.
function showProblems(ps) {
  problemsBox.replaceChildren();
  for (const p of ps || []) {
    problemsBox.append(el("b", null, "A reload was refused: hotdrop runs with the last good config and requests files" +
      (p.since ? " (since " + clock(p.since) + ")" : "") + ". Fix these and save:"));
    problemsBox.append(el("pre", null, p.message));
  }
  problemsBox.hidden = !(ps && ps.length);
}

async function reload() {
  const r = await fetch("/api/requests", { credentials: "same-origin" });
  if (!r.ok) return;
  // Signed in by the login form's session (its cookie is out of this script's reach).
  document.getElementById("signout").hidden = r.headers.get("X-Hotdrop-Session") !== "cookie";
  const body = await r.json();
  requests.clear();
  for (const q of body.requests || []) requests.set(q.bin ? "" : q.id, q);
  showProblems(body.problems);
  render();
}

// progress updates one file's bar in place: a full render each second would reset the
// search box's caret and the bars' transitions.
function progress(ev) {
  if (!ev.request || !ev.file || !ev.progress) return;
  const r = requests.get(ev.request.id);
  if (!r) return;
  const f = (r.files || []).find((x) => x.id === ev.file.id);
  if (!f) return;
  f.done = ev.progress.bytes; f.rate = ev.progress.rate; f.eta = ev.progress.eta;
  const li = board.querySelector(`article[data-id="${CSS.escape(r.id)}"] li[data-file-id="${f.id}"]`);
  if (!li) return;
  li.querySelector(".bar > div").style.width = (100 * fraction(f)).toFixed(1) + "%";
  li.querySelector(".bar").setAttribute("aria-valuenow", Math.round(100 * fraction(f)));
  li.querySelector(".rate").textContent = progressText(f);
}

function connect() {
  const es = new EventSource("/api/events");
  es.onopen = () => { live.textContent = "live"; live.classList.remove("off"); reload(); health(); };
  es.onerror = () => { live.textContent = "reconnecting…"; live.classList.add("off"); };
  es.addEventListener("request", (m) => {
    const r = JSON.parse(m.data);
    requests.set(r.bin ? "" : r.id, r);
    render();
  });
  es.addEventListener("file.progress", (m) => progress(JSON.parse(m.data)));
  es.addEventListener("problems", (m) => showProblems(JSON.parse(m.data).problems));
  es.addEventListener("resync", () => reload());
  es.addEventListener("destination.unreachable", (m) => {
    const ev = JSON.parse(m.data);
    banner.textContent = "The destination is unreachable. " + ((ev.reason && ev.reason.message) || "");
    banner.hidden = false;
    reachable = false;
    render();
  });
  es.addEventListener("destination.back", () => { banner.hidden = true; reachable = true; render(); });
}

// Countdowns of retries, kept current in place (a full render would reset the search box).
setInterval(() => {
  for (const r of requests.values()) {
    for (const f of r.files || []) {
      if (!f.retrying) continue;
      const li = board.querySelector(`li[data-file-id="${f.id}"]`);
      if (li) li.querySelector(".rate").textContent = progressText(f);
      const why = r.id && board.querySelector(`article[data-id="${CSS.escape(r.id)}"] > .why`);
      if (why) why.textContent = whyLine(r);
    }
  }
}, 1000);

search.addEventListener("input", render);
group.addEventListener("change", () => { localStorage.setItem("hotdrop.group", group.value); render(); });
reload().then(connect, connect);
