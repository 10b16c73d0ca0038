// The POS page: one session at a time, every change an op list posted to the API.
"use strict";

const pos = {
  // sku -> [{code, options: {code: price}, min, max}], from the page (cafe.catalog.OPTION_GROUPS).
  optionGroups: JSON.parse((document.getElementById("option-groups") || {}).textContent || "{}"),
  // channel code -> how the page sells on it offline: "exact", "estimate" or "online" (offline.js).
  offlineModes: JSON.parse((document.getElementById("offline-modes") || {}).textContent || "{}"),
  channels: [],
  channel: null,      // the selected channel (from GET channels/)
  session: null,      // the last session representation the server sent
  commitKey: null,    // kept until the commit has a definitive answer, so a retry replays
  tickets: new Map(), // order ref -> its ticket number (null: the channel numbers none)
  queue: Promise.resolve(),
};

const $ = (id) => document.getElementById(id);

function say(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message " + (kind || "info");
  box.hidden = !text;
}

function sessionPath(suffix) {
  return "sessions/" + encodeURIComponent(pos.session.session_key) + "/" + (suffix ? suffix + "/" : "");
}

// Every request that touches the session goes through this queue, so taps made
// faster than the network are sent one after the other, each with the rev it saw.
function enqueue(task) {
  pos.queue = pos.queue.then(task).catch((err) => say(err instanceof ApiError ? describeError(err) : unreachable(err), "error"));
  return pos.queue;
}

// A request that never reached the server. On a channel that sells online only (a
// check must pass before the commit, and only the server runs it) nothing was kept to
// send later: say so plainly.
function unreachable(err) {
  const channel = channelOf(pos.session) || pos.channel;
  if (channel && offline.mode(channel) === "online" && (err instanceof TypeError || !navigator.onLine)) {
    return "No connection: " + channel.code + " sells online only (its checks run on the server), " +
           "so nothing was kept to send later. Reconnect and try again.";
  }
  return describeError(err);
}

function setSession(session) {
  pos.session = session;
  if (session) {
    history.replaceState(null, "", "#" + session.channel_code + "/" + session.session_key);
  }
  render();
}

async function reloadSession(key, channelCode) {
  const {data} = await api("GET", "sessions/" + encodeURIComponent(key) + "/?channel_code=" + encodeURIComponent(channelCode));
  if (offline.handles(channelOf(data))) offline.remember(data);
  setSession(data);
  return data;
}

// The channel a session belongs to (it decides who prices, and whether it sells offline).
function channelOf(s) {
  return (s && pos.channels.find(c => c.code === s.channel_code)) || null;
}

async function loadChannels() {
  try {
    const {data} = await api("GET", "channels/");
    pos.channels = Array.isArray(data) ? data : (data.results || []);
    offline.rememberChannels(pos.channels);
  } catch (err) {
    // No network: the channels this browser saw last time (offline.js).
    if (err instanceof ApiError || !offline.channels()) throw err;
    pos.channels = offline.channels();
  }
  const select = $("channel");
  select.replaceChildren(...pos.channels.map(c => el("option", {value: c.code}, c.name ? c.name + " (" + c.code + ")" : c.code)));
  const preferred = pos.channels.find(c => c.code === "pos") || pos.channels[0];
  if (preferred) select.value = preferred.code;
  pickChannel(select.value);
}

function pickChannel(code) {
  pos.channel = pos.channels.find(c => c.code === code) || null;
  renderPrices();
}

function renderPrices() {
  const currency = pos.channel ? pos.channel.currency : "BRL";
  for (const span of document.querySelectorAll(".product .price")) {
    span.textContent = formatMoney(Number(span.dataset.q), currency);
  }
}

function render() {
  const s = pos.session;
  const open = !!s && s.state === "open";
  $("session-key").textContent = s ? s.session_key : "—";
  $("session-state").textContent = s ? s.state : "—";
  $("session-rev").textContent = s ? String(s.rev) : "—";
  // A total the page worked out offline on a channel the server prices: an estimate,
  // marked as such until the server's total replaces it.
  const estimate = !!(s && s.estimate);
  $("total").textContent = s ? (estimate ? "≈ " : "") + formatMoney(s.total_q, s.currency) : "—";
  $("total").classList.toggle("estimate", estimate);
  $("estimate-note").hidden = !estimate;
  const p = (s && s.pricing) || {};
  const parts = [["discounts", p.discounts_q], ["tax", p.taxes_q], ["fees", p.fees_q]].filter(([, q]) => q);
  $("adjustments").textContent = estimate ? "" : parts.length
    ? "Subtotal " + formatMoney(p.subtotal_q, s.currency) + " · " +
      parts.map(([name, q]) => name + " " + formatMoney(q, s.currency)).join(" · ")
    : "";
  for (const b of document.querySelectorAll(".product")) b.disabled = !open;
  $("commit").disabled = !open || !(s.items && s.items.length);
  $("abandon").disabled = !open;

  const body = $("lines");
  body.replaceChildren();
  if (!s || !s.items || !s.items.length) {
    body.append(el("tr", {class: "empty"}, el("td", {colspan: "5"}, s ? "Tap a product to add it." : "No session yet: press “New session”.")));
  } else {
    for (const line of s.items) {
      const qtyCell = el("td", {class: "qty"});
      if (open) {
        qtyCell.append(
          el("button", {class: "small", title: "one less", "aria-label": "one less " + line.sku,
                        onclick: () => changeQty(line, -1)}, "−"),
          el("span", {class: "qty-value"}, line.qty),
          el("button", {class: "small", title: "one more", "aria-label": "one more " + line.sku,
                        onclick: () => changeQty(line, +1)}, "+"),
        );
      } else {
        qtyCell.append(el("span", {class: "qty-value"}, line.qty));
      }
      const item = el("td", {}, line.sku);
      if (line.options && line.options.length) item.append(el("div", {class: "options"}, "+ " + optionsText(line.options)));
      if (open && pickable(line)) item.append(optionPicker(line));
      body.append(el("tr", {dataset: {lineId: line.line_id, sku: line.sku}},
        item,
        qtyCell,
        el("td", {class: "num"}, formatMoney(line.unit_price_q, s.currency)),
        el("td", {class: "num"}, formatMoney(line.line_total_q, s.currency)),
        el("td", {}, open ? el("button", {class: "small danger", title: "remove", "aria-label": "remove " + line.sku,
                                         onclick: () => modify([{op: "remove_line", line_id: line.line_id}])}, "×") : ""),
      ));
    }
  }

  const checks = $("checks");
  checks.replaceChildren();
  for (const [code, c] of Object.entries((s && s.checks) || {})) {
    const fresh = c.rev === s.rev;
    const label = code + ": " + (fresh ? (c.ok ? "ok" : "failed") : "stale (rev " + c.rev + ")");
    checks.append(el("span", {class: "badge " + (fresh ? (c.ok ? "ok" : "bad") : "stale")}, label));
  }
  const issues = $("issues");
  issues.replaceChildren();
  for (const issue of (s && s.issues) || []) {
    const row = el("div", {class: "issue" + (issue.blocking ? " blocking" : "")}, issue.message || issue.code);
    for (const action of issue.actions || []) {
      row.append(" ", el("button", {class: "small", onclick: () => resolve(issue.id, action.id)}, action.label || action.id));
    }
    issues.append(row);
  }
  $("order").hidden = !(s && s.order_ref);
  $("order-ref").textContent = (s && s.order_ref) || "";
  showTicket((s && s.order_ref) || null);
}

// The ticket number the counter calls out ("Ticket 42"), big, once the session is an
// order: the commit's answer names the order, the order carries its number.
async function showTicket(ref) {
  const box = $("ticket");
  const shown = (number) => {
    box.hidden = number == null;
    $("ticket-number").textContent = number == null ? "" : String(number);
  };
  if (!ref) return shown(null);
  if (pos.tickets.has(ref)) return shown(pos.tickets.get(ref));
  shown(null);
  try {
    const {data} = await api("GET", "orders/" + encodeURIComponent(ref) + "/");
    pos.tickets.set(ref, data.number ?? null);
    if (pos.session && pos.session.order_ref === ref) shown(data.number ?? null);
  } catch (err) { /* offline or gone: the order ref is shown all the same */ }
}

// A stale rev (412) means someone else changed the session (another tab, another
// terminal): reload it, show what is there now, and say that this change was not applied.
async function reconcile(err) {
  const s = pos.session;
  const current = err.problem.current_rev;
  await reloadSession(s.session_key, s.channel_code);
  say("This session was changed elsewhere (it is now at rev " + (current ?? pos.session.rev) +
      "). It has been reloaded; your last change was not applied — check the order and tap again.", "warning");
}

function modify(ops) {
  return enqueue(async () => {
    const s = pos.session;
    if (!s) return;
    if (offline.handles(channelOf(s))) return setSession(offline.modify(s, ops));
    try {
      const {data} = await api("POST", sessionPath("modify"), {channel_code: s.channel_code, ops, rev: s.rev});
      setSession(data);
      say("");
      refreshChecksSoon();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) return reconcile(err);
      throw err;
    }
  });
}

// Checks (stock) are written by a handler after the modify commits: in process that
// is before the answer, with Celery a moment later. Look again until every check is
// fresh for this rev, backing off, and give up after a few tries.
function checksPending(s) {
  const checks = Object.values(s.checks || {});
  if (!checks.length) return !!pos.channel && pos.channel.pricing_policy === "internal" && s.items.length > 0;
  return checks.some(c => c.rev !== s.rev);
}

function refreshChecksSoon(attempt = 0) {
  const s = pos.session;
  if (!s || s.state !== "open" || attempt > 5 || !checksPending(s)) return;
  const rev = s.rev;
  setTimeout(() => enqueue(async () => {
    if (!pos.session || pos.session.rev !== rev || pos.session.state !== "open") return;
    await reloadSession(pos.session.session_key, pos.session.channel_code);
    refreshChecksSoon(attempt + 1);
  }), 300 * 2 ** attempt);
}

// Options on internal-pricing channels (the shop): the catalog's groups, given by the
// page, say which skus take which options; the server prices and checks them.
function pickable(line) {
  const channel = pos.channels.find(c => c.code === pos.session.channel_code) || pos.channel;
  return !!channel && channel.pricing_policy === "internal" && !!pos.optionGroups[line.sku];
}

function optionPicker(line) {
  const current = line.options || [];
  const qtyOf = code => (current.find(o => o.code === code) || {qty: 0}).qty;
  const picker = el("div", {class: "option-picker"});
  for (const group of pos.optionGroups[line.sku]) {
    for (const code of Object.keys(group.options)) {
      const have = qtyOf(code);
      const label = (have ? "✓ " : "+ ") + code + (have > 1 ? " ×" + have : "");
      picker.append(el("button", {class: "small option" + (have ? " on" : ""), dataset: {option: code},
                                  "aria-label": code + " on " + line.sku,
                                  onclick: () => pickOption(line, group, code)}, label));
    }
  }
  return picker;
}

// A tap on an option: a group of one (milk) swaps or clears its choice; a larger group
// (shots) adds one more up to its max, and a tap at the max clears that option.
function pickOption(line, group, code) {
  const mine = o => o.code in group.options;
  const inGroup = (line.options || []).filter(mine);
  const have = (inGroup.find(o => o.code === code) || {qty: 0}).qty;
  const used = inGroup.reduce((n, o) => n + o.qty, 0);
  const max = group.max === null ? Infinity : group.max;
  let chosen;
  if (max === 1) chosen = have ? [] : [{code, qty: 1}];
  else if (used < max) chosen = [...inGroup.filter(o => o.code !== code), {code, qty: have + 1}];
  else chosen = inGroup.filter(o => o.code !== code);
  const options = [...(line.options || []).filter(o => !mine(o)), ...chosen].map(o => ({code: o.code, qty: o.qty}));
  return modify([{op: "set_options", line_id: line.line_id, options}]);
}

function addProduct(button) {
  const s = pos.session;
  if (!s) return;
  const sku = button.dataset.sku;
  // The session's own channel decides who prices, whatever the picker shows now.
  const channel = pos.channels.find(c => c.code === s.channel_code) || pos.channel;
  const external = channel && channel.pricing_policy === "external";
  const price = Number(button.dataset.price);
  const same = (s.items || []).find(l => l.sku === sku && !(l.options && l.options.length) &&
                                          (!external || l.unit_price_q === price));
  if (same) return changeQty(same, +1);
  const op = {op: "add_line", sku, qty: 1};
  if (external) op.unit_price_q = price;
  return modify([op]);
}

function changeQty(line, delta) {
  const qty = Math.max(0, Number(line.qty) + delta);
  return modify([{op: "set_qty", line_id: line.line_id, qty}]);
}

function resolve(issueId, actionId) {
  return enqueue(async () => {
    const s = pos.session;
    const {data} = await api("POST", sessionPath("resolve"), {channel_code: s.channel_code, issue_id: issueId, action_id: actionId});
    setSession(data);
    say("");
    refreshChecksSoon();
  });
}

function newSession() {
  return enqueue(async () => {
    if (!pos.channel) throw new Error("No channel: ask an admin for a channel grant.");
    if (offline.handles(pos.channel)) {
      const s = offline.create(pos.channel);
      setSession(s);
      say("Session " + s.session_key + " opened on " + s.channel_code + ".", "info");
      return;
    }
    const {data} = await api("POST", "sessions/", {channel_code: pos.channel.code});
    pos.commitKey = null;
    setSession(data);
    say("Session " + data.session_key + " opened on " + data.channel_code + ".", "info");
  });
}

function openSession(key, channelCode) {
  return enqueue(async () => {
    pos.commitKey = null;
    // A session with changes still waiting to be sent is shown as this terminal has it.
    if (offline.waiting(channelCode, key)) return setSession(offline.view(channelCode, key));
    try {
      await reloadSession(key, channelCode);
    } catch (err) {
      if (err instanceof ApiError || !offline.knows(channelCode, key)) throw err;
      setSession(offline.view(channelCode, key));
    }
    say("");
  });
}

function commit() {
  return enqueue(async () => {
    const s = pos.session;
    if (!s) return;
    if (offline.handles(channelOf(s))) {
      const saved = offline.commit(s);
      setSession(saved);
      const total = saved.estimate
        ? "about " + formatMoney(s.total_q, s.currency) + " before tax and coupons"
        : formatMoney(s.total_q, s.currency);
      say("Sale of " + total + " saved: it is sent as soon as the network allows.", "info");
      return;
    }
    pos.commitKey = pos.commitKey || newKey("COMMIT");
    try {
      const {data, headers} = await api("POST", sessionPath("commit"), {channel_code: s.channel_code, idempotency_key: pos.commitKey});
      pos.commitKey = null;
      await reloadSession(s.session_key, s.channel_code);
      const replayed = headers.get("Idempotent-Replayed") === "true" ? " (replayed)" : "";
      say("Order " + data.order_ref + " committed: " + formatMoney(data.total_q, data.currency) + replayed + ".", "success");
    } catch (err) {
      if (err instanceof ApiError && err.status < 500) pos.commitKey = null;  // a 4xx frees the key
      if (err instanceof ApiError && err.code === "already_committed") {
        await reloadSession(s.session_key, s.channel_code);
        say("Already committed as order " + (err.problem.order_ref || pos.session.order_ref) + ".", "warning");
        return;
      }
      if (err instanceof ApiError && err.status === 412) return reconcile(err);
      throw err;
    }
  });
}

function abandon() {
  return enqueue(async () => {
    const s = pos.session;
    if (!s) return;
    if (offline.handles(channelOf(s))) {
      // Queued behind the session's waiting changes, sent on the rev it was made on.
      const left = offline.abandon(s);
      setSession(left);
      say("Session " + s.session_key + " abandoned" + (navigator.onLine ? "." : " here: the server learns it once the network allows."), "info");
      return;
    }
    const {data} = await api("POST", sessionPath("abandon"), {channel_code: s.channel_code});
    if (offline.handles(channelOf(data))) offline.remember(data);
    setSession(data);
    say("Session " + data.session_key + " abandoned.", "info");
  });
}

document.addEventListener("DOMContentLoaded", async () => {
  $("channel").addEventListener("change", (e) => pickChannel(e.target.value));
  $("new-session").addEventListener("click", newSession);
  $("commit").addEventListener("click", commit);
  $("abandon").addEventListener("click", abandon);
  $("open-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("open-key").value.trim();
    if (key && pos.channel) openSession(key, pos.channel.code);
  });
  for (const b of document.querySelectorAll(".product")) b.addEventListener("click", () => addProduct(b));
  if (!offline.user()) {
    // A copy of the page kept from an earlier visit, shown with nobody signed in.
    say("Signed out: sign in to sell.", "error");
    offline.render();
    return;
  }
  try {
    await loadChannels();
  } catch (err) {
    say(describeError(err), "error");
    return;
  }
  offline.start();
  // "#pos/S-1234": open that session (a second tab on the same session, a reload).
  const m = location.hash.match(/^#([^/]+)\/(.+)$/);
  if (m) {
    const [, code, key] = m;
    if (pos.channels.some(c => c.code === code)) {
      $("channel").value = code;
      pickChannel(code);
    }
    openSession(decodeURIComponent(key), code);
  }
  render();
});
