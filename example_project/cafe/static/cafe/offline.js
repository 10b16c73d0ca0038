// Offline selling for the POS page.
//
// On a channel that may sell offline (the page's "offline-modes", from the pos view:
// "exact" where the terminal prices the lines, the café's pos; "estimate" where the
// server prices them, the shop), every act of the cashier (a new session, a modify, a
// commit, an abandon) becomes an entry of an outbox kept in localStorage *before*
// anything is sent: the entry holds its idempotency key, made once when the cashier
// acts, and the rev it was made on. A channel whose commit needs a check only the
// server runs ("online": the web) is not queued: the page says it needs a connection.
//
// The outbox belongs to the cashier signed in (the cafe_user cookie, set by
// cafe/middleware.py): a second cashier on the same browser has an outbox of their
// own, and a page whose cashier signed out (or was replaced by another) sends nothing.
// The page shows the session as the server last sent it plus the entries still
// waiting, so selling goes on while the network is down, and a reload finds the same
// queue. A single sender (one per browser, under a Web Lock) replays the entries
// strictly in order, one at a time, always with their own key: a request whose answer
// was lost is sent again with the same key and body, and the server replays its answer.
//
// A 412 (the session moved on elsewhere) reloads the session. When none of the
// waiting changes touches a line that was changed elsewhere, they are re-applied on
// the new rev (same keys: a failed request left nothing recorded under them);
// otherwise the session's entries are held, the page shows the session as the server
// has it, and the cashier chooses: drop the held changes, or apply them on top.
//
// Uses api.js (api, ApiError, newKey, describeError) and, from pos.js, pos, say and
// setSession.
"use strict";

const offline = (() => {
  // Who is signed in now, as the cafe_user cookie says ("" when nobody is).
  function signedIn() {
    const m = document.cookie.match(/(?:^|;\s*)cafe_user=([^;]*)/);
    try { return m ? decodeURIComponent(m[1]) : ""; } catch (e) { return ""; }
  }
  // The cashier this page sells for: fixed when the page loads.
  const USER = signedIn();
  const STORE = "omniman.pos.outbox.v2:" + USER;
  const LOCK = "omniman.pos.outbox:" + USER;
  const MAX_DELAY = 10000;
  let sending = false;
  let again = false;
  let retryTimer = null;
  let retryDelay = 1000;
  let reachable = navigator.onLine;

  // -- storage: one JSON value, read and written whole, synchronously ----------------

  function load() {
    let st = null;
    try { st = JSON.parse(localStorage.getItem(STORE) || "null"); } catch (e) { st = null; }
    st = st || {};
    return {seq: 0, queue: [], sessions: {}, conflicts: {}, channels: null, ...st};
  }

  // Read, change and write back in one synchronous step (nothing awaits in between).
  function update(change) {
    const st = load();
    const out = change(st);
    localStorage.setItem(STORE, JSON.stringify(st));
    return out;
  }

  const clone = (x) => JSON.parse(JSON.stringify(x));
  const sidOf = (channelCode, key) => channelCode + "/" + key;

  // -- the session as the terminal sees it: the server's last answer + waiting entries --

  // "2", "0.25": qty as the server writes it.
  function canonQty(qty) {
    let s = String(qty);
    if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s;
  }

  // round-half-even(qty × unit_price_q), in integers (qty has at most 3 decimals).
  function lineTotal(qty, price) {
    const [whole, frac = ""] = canonQty(qty).split(".");
    const scale = 10n ** BigInt(frac.length);
    const num = BigInt(whole + frac) * BigInt(price);
    let q = num / scale;
    const r = num % scale;
    if (2n * r > scale || (2n * r === scale && q % 2n === 1n)) q += 1n;
    return Number(q);
  }

  // What the page knows of prices without the network: the catalog's prices of the
  // product buttons and the option prices of the page (an estimate on a channel priced
  // by the server: the catalog may have moved since the page was served).
  function catalogPrice(sku) {
    const button = document.querySelector('.product[data-sku="' + CSS.escape(sku) + '"]');
    return button ? Number(button.dataset.price) : 0;
  }

  function optionPrice(sku, code) {
    const groups = (typeof pos !== "undefined" && pos.optionGroups[sku]) || [];
    for (const g of groups) if (code in g.options) return g.options[code];
    return 0;
  }

  function pricedOptions(sku, options) {
    return (options || []).map(o => ({code: o.code, qty: o.qty || 1,
                                      unit_price_q: o.unit_price_q ?? optionPrice(sku, o.code)}));
  }

  const optionsQ = (line) => (line.options || []).reduce((n, o) => n + o.unit_price_q * o.qty, 0);

  function retotal(s) {
    for (const line of s.items) line.line_total_q = lineTotal(line.qty, line.unit_price_q + optionsQ(line));
    s.total_q = s.items.reduce((n, l) => n + l.line_total_q, 0);
    s.pricing = {subtotal_q: s.total_q, discounts_q: 0, taxes_q: 0, fees_q: 0, total_q: s.total_q, adjustments: []};
  }

  // The ops the POS page makes, applied as the server would on an external-pricing
  // channel without modifiers (elsewhere, an estimate: catalog prices, no modifiers).
  // strict: an op that does not fit throws (a new act); otherwise it is skipped
  // (showing a queue that a conflict holds).
  function applyOps(s, ops, strict) {
    const fail = (msg) => { if (strict) throw new Error(msg); };
    for (const op of ops) {
      const at = s.items.findIndex(l => l.line_id === op.line_id);
      if (op.op === "add_line") {
        if (at >= 0) { fail("line " + op.line_id + " exists"); continue; }
        s.items.push({line_id: op.line_id, sku: op.sku, qty: canonQty(op.qty),
                      unit_price_q: op.unit_price_q ?? catalogPrice(op.sku), line_total_q: 0, meta: op.meta || {},
                      options: pricedOptions(op.sku, op.options), adjustments: []});
      } else if (op.op === "set_qty" || op.op === "remove_line") {
        if (at < 0) { fail("unknown line " + op.line_id); continue; }
        if (op.op === "remove_line" || Number(op.qty) === 0) s.items.splice(at, 1);
        else s.items[at].qty = canonQty(op.qty);
      } else if (op.op === "set_options") {
        if (at < 0) { fail("unknown line " + op.line_id); continue; }
        s.items[at].options = pricedOptions(s.items[at].sku, op.options);
      } else {
        fail("the op " + op.op + " needs the network");
      }
    }
    retotal(s);
  }

  function blank(entry) {
    return {session_key: entry.session_key, channel_code: entry.channel_code, state: "open", rev: 0, items: [],
            data: {}, pricing: {}, total_q: 0, currency: entry.currency, checks: {}, issues: [],
            handle_type: "", handle_ref: ""};
  }

  // What the page shows for a session: the server's last answer with every waiting
  // entry applied; `waiting` counts them. Held by a conflict: the server's state alone.
  function view(sid, st = load()) {
    const known = st.sessions[sid];
    let s = known ? clone(known) : null;
    const mine = st.queue.filter(e => e.sid === sid);
    const conflict = st.conflicts[sid] || null;
    let local = false;
    for (const e of conflict ? [] : mine) {
      if (e.kind === "create") s = s || blank(e);
      else if (!s) break;
      else if (e.kind === "modify") { applyOps(s, e.ops, false); s.rev += 1; local = true; }
      else if (e.kind === "commit") s.state = "committed";
      else if (e.kind === "abandon") s.state = "abandoned";
    }
    if (!s) return null;
    s.waiting = mine.length;
    s.conflict = conflict;
    // Totals the page worked out itself on a channel the server prices: an estimate.
    s.estimate = local && mode(s.channel_code) === "estimate";
    return s;
  }

  // -- acts: each one stored before it is sent --------------------------------------

  // "exact", "estimate" or "online" (see the top of this file).
  function mode(channelOrCode) {
    const code = typeof channelOrCode === "string" ? channelOrCode : channelOrCode && channelOrCode.code;
    const modes = (typeof pos !== "undefined" && pos.offlineModes) || {};
    if (modes[code]) return modes[code];
    const channel = typeof channelOrCode === "string" ? null : channelOrCode;
    return channel && channel.pricing_policy === "external" ? "exact" : "online";
  }

  // Whether the acts on this channel go through the outbox. A page without a cashier
  // (signed out) queues nothing.
  function handles(channel) {
    return !!channel && USER !== "" && mode(channel) !== "online";
  }

  // Throws when the cashier this page sells for is no longer the one signed in.
  function mustBeSignedIn() {
    const who = signedIn();
    if (who === USER) return;
    throw new Error(who ? "Another cashier (" + who + ") is signed in on this browser: reload the page to sell as them."
                        : "Signed out: sign in again to sell.");
  }

  // The session as the store has it; one the store has not seen yet (read before this
  // page kept sessions) is taken as the server sent it.
  function known(st, sid, current) {
    const s = view(sid, st);
    if (s) return s;
    keep(st, sid, current);
    return view(sid, st);
  }

  // Keep the server's answer for a session; forget the oldest idle ones beyond 50.
  function keep(st, sid, session) {
    st.sessions[sid] = stripped(session);
    const idle = Object.keys(st.sessions).filter(id => !st.conflicts[id] && !st.queue.some(e => e.sid === id));
    for (const id of idle.slice(0, Math.max(0, idle.length - 50))) delete st.sessions[id];
  }

  function create(channel) {
    mustBeSignedIn();
    const session = update(st => {
      const key = newKey("S");
      const sid = sidOf(channel.code, key);
      st.queue.push({id: ++st.seq, kind: "create", sid, channel_code: channel.code, session_key: key,
                     currency: channel.currency, key: newKey("NEW"), made_at: new Date().toISOString()});
      return view(sid, st);
    });
    changed();
    return session;
  }

  function modify(current, ops) {
    mustBeSignedIn();
    const session = update(st => {
      const sid = sidOf(current.channel_code, current.session_key);
      const s = known(st, sid, current);
      if (s.conflict) throw new Error("This session has a conflict: settle it first.");
      if (s.state !== "open") throw new Error("This session is " + s.state + ".");
      ops = ops.map(op => (op.op === "add_line" && !op.line_id ? {...op, line_id: newKey("L")} : op));
      // What each touched line looked like when the cashier acted: a 412 compares it
      // with the server's line to tell a clash from a change elsewhere in the session.
      const seen = {};
      for (const op of ops) {
        const line = s.items.find(l => l.line_id === op.line_id);
        if (op.op !== "add_line" && line) seen[line.line_id] = {sku: line.sku, qty: line.qty, unit_price_q: line.unit_price_q};
      }
      applyOps(clone(s), ops, true);
      st.queue.push({id: ++st.seq, kind: "modify", sid, channel_code: s.channel_code, session_key: s.session_key,
                     key: newKey("MOD"), rev: s.rev, ops, seen, made_at: new Date().toISOString()});
      return view(sid, st);
    });
    changed();
    return session;
  }

  function commit(current) {
    mustBeSignedIn();
    const session = update(st => {
      const sid = sidOf(current.channel_code, current.session_key);
      const s = known(st, sid, current);
      if (s.conflict) throw new Error("This session has a conflict: settle it first.");
      if (s.state !== "open") throw new Error("This session is " + s.state + ".");
      if (!s.items.length) throw new Error("Add something before the commit.");
      st.queue.push({id: ++st.seq, kind: "commit", sid, channel_code: s.channel_code, session_key: s.session_key,
                     key: newKey("COMMIT"), rev: s.rev, total_q: s.total_q, made_at: new Date().toISOString()});
      return view(sid, st);
    });
    changed();
    return session;
  }

  // An abandon waits its turn like the rest and is sent on the rev it was made on.
  function abandon(current) {
    mustBeSignedIn();
    const session = update(st => {
      const sid = sidOf(current.channel_code, current.session_key);
      const s = known(st, sid, current);
      if (s.conflict) throw new Error("This session has a conflict: settle it first.");
      if (s.state !== "open") throw new Error("This session is " + s.state + ".");
      st.queue.push({id: ++st.seq, kind: "abandon", sid, channel_code: s.channel_code, session_key: s.session_key,
                     rev: s.rev, made_at: new Date().toISOString()});
      return view(sid, st);
    });
    changed();
    return session;
  }

  // The server's answer for a session the page reads (GET): kept, so that a reload
  // without the network still shows it.
  function remember(session) {
    if (!session) return;
    update(st => keep(st, sidOf(session.channel_code, session.session_key), session));
  }

  function stripped(session) {
    const s = clone(session);
    delete s.waiting;
    delete s.conflict;
    return s;
  }

  function rememberChannels(list) {
    update(st => { st.channels = list; });
  }

  function channels() {
    return load().channels;
  }

  function knows(channelCode, key) {
    return view(sidOf(channelCode, key)) !== null;
  }

  function waiting(channelCode, key) {
    const sid = sidOf(channelCode, key);
    return load().queue.some(e => e.sid === sid) || !!load().conflicts[sid];
  }

  // -- the sender ---------------------------------------------------------------------

  const detailPath = (e) => "sessions/" + encodeURIComponent(e.session_key) + "/";

  // The network is down or the server is busy: keep the entry, try later with the same key.
  function transient(err) {
    if (!(err instanceof ApiError)) return true;
    return err.status >= 500 || err.status === 429 || err.status === 408 || err.status === 401 ||
           err.code === "idempotency_in_flight";
  }

  function stale(current) {
    return new ApiError(412, {code: "precondition_failed", current_rev: current.rev,
                              detail: "The session changed before this commit."}, new Headers());
  }

  async function send(e) {
    if (e.kind === "create") {
      return api("POST", "sessions/", {channel_code: e.channel_code, session_key: e.session_key, idempotency_key: e.key});
    }
    if (e.kind === "modify") {
      return api("POST", detailPath(e) + "modify/", {channel_code: e.channel_code, ops: e.ops, rev: e.rev,
                                                    idempotency_key: e.key});
    }
    // A commit seals whatever the session holds, and an abandon drops it: send them
    // only on the rev they were made on (If-Match), so that a change made elsewhere
    // meanwhile is shown, not sold or thrown away.
    const now = await api("GET", detailPath(e) + "?channel_code=" + encodeURIComponent(e.channel_code));
    const headers = {};
    if (now.data.state === "open") {
      if (now.data.rev !== e.rev) throw stale(now.data);
      headers["If-Match"] = now.headers.get("ETag");
    }
    if (e.kind === "abandon") {
      // Abandon takes no key: abandoned already (our earlier try whose answer was
      // lost, or another screen) is what the cashier asked for; committed is refused.
      if (now.data.state === "abandoned") return now;
      return api("POST", detailPath(e) + "abandon/", {channel_code: e.channel_code}, headers);
    }
    // Not open: our own earlier try may have committed it; the key replays that answer.
    return api("POST", detailPath(e) + "commit/", {channel_code: e.channel_code, idempotency_key: e.key}, headers);
  }

  // Keep a copy of the page, its scripts and its styles, that pos-sw.js answers with
  // when the page is reloaded without the network. ``pageCopy`` says whether such a
  // reload would open the page (the sign next to the badge): "ready" once the copy is
  // kept and the service worker controls the page, "unavailable" where the browser
  // runs no service worker for it (plain HTTP to another host), else "pending".
  let pageCopy = "pending";

  function keptAs(state) {
    pageCopy = state;
    render();
  }

  async function keepPage() {
    if (!("serviceWorker" in navigator) || !window.caches) return keptAs("unavailable");
    const sw = navigator.serviceWorker;
    if (!navigator.onLine) {
      // Opened from the copy, or with the network already down: nothing to fetch.
      return keptAs(sw.controller ? "ready" : "pending");
    }
    try {
      await sw.register(new URL("sw.js", location.href).pathname);
      const urls = [location.pathname,
                    ...[...document.querySelectorAll("script[src]")].map(s => s.src),
                    ...[...document.querySelectorAll('link[rel="stylesheet"]')].map(l => l.href)];
      await (await caches.open("omniman-pos-v1")).addAll(urls);
      await sw.ready;
      // A first visit is controlled once the worker claims it (pos-sw.js, on activate).
      if (!sw.controller) await new Promise((resolve) => sw.addEventListener("controllerchange", resolve, {once: true}));
      keptAs("ready");
    } catch (err) {
      // No copy this time (the network dropped): selling offline still works until the
      // page is reloaded; the next "online" tries again.
      keptAs("pending");
    }
  }

  function start() {
    keepPage();
    window.addEventListener("online", () => {
      reachable = true;
      retryDelay = 1000;
      if (pageCopy === "pending") keepPage();
      changed();
    });
    window.addEventListener("offline", () => { reachable = false; render(); });
    // Another tab of this browser changed the queue or the sessions: show it.
    window.addEventListener("storage", (ev) => { if (ev.key === STORE) refresh(); });
    changed();
  }

  function changed() {
    refresh();
    flush();
  }

  function schedule() {
    if (retryTimer) return;
    retryTimer = setTimeout(() => { retryTimer = null; flush(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, MAX_DELAY);
  }

  // Send what waits. A call made while the sender runs is not lost: the sender looks
  // again once it is done (an act made as it was giving the lock back).
  async function flush() {
    if (sending) { again = true; return; }
    sending = true;
    again = false;
    try {
      if (navigator.locks) await navigator.locks.request(LOCK, drain);
      else await drain();
    } finally {
      sending = false;
      render();
    }
    if (again) flush();
  }

  async function drain() {
    for (;;) {
      const st = load();
      const e = st.queue.find(x => !st.conflicts[x.sid]);
      if (!e) return;
      // Another cashier signed in on this browser (or nobody is): their cookies must
      // not carry this cashier's sales. Look again later.
      if (signedIn() !== USER) { render(); schedule(); return; }
      let answer;
      try {
        answer = await send(e);
      } catch (err) {
        if (transient(err)) {
          reachable = err instanceof ApiError;
          render();
          schedule();
          return;
        }
        reachable = true;
        if (err.status === 412 ? !(await onStale(e)) : !(await onRejected(e, err))) return;
        continue;
      }
      reachable = true;
      retryDelay = 1000;
      update(st2 => {
        st2.queue = st2.queue.filter(x => x.id !== e.id);
        if (e.kind === "commit") {
          const s = st2.sessions[e.sid];
          if (s) Object.assign(s, {state: "committed", order_ref: answer.data.order_ref});
        } else {
          keep(st2, e.sid, answer.data);
        }
      });
      synced(e, answer);
    }
  }

  async function fresh(e) {
    try {
      const {data} = await api("GET", detailPath(e) + "?channel_code=" + encodeURIComponent(e.channel_code));
      return data;
    } catch (err) {
      return null;
    }
  }

  // Does any waiting change of the session clash with the server's state? A change
  // clashes when a line it touches is no longer as the cashier saw it.
  function clash(server, entries) {
    if (server.state !== "open") return "the session is " + server.state + " on another screen";
    const s = clone(server);
    for (const e of entries) {
      if (e.kind !== "modify") continue;
      for (const [lineId, was] of Object.entries(e.seen || {})) {
        const line = s.items.find(l => l.line_id === lineId);
        if (!line) return was.sku + " was removed on another screen";
        if (line.sku !== was.sku || line.qty !== was.qty || line.unit_price_q !== was.unit_price_q) {
          return line.sku + " was changed on another screen (qty " + line.qty + ", you saw " + was.qty + ")";
        }
      }
      for (const op of e.ops) {
        if (op.op === "add_line" && s.items.some(l => l.line_id === op.line_id)) return "line " + op.line_id + " exists";
      }
      applyOps(s, e.ops, false);
    }
    // The server's session moved on: a sale sealed now would not be the one the cashier
    // charged for, and an abandon would throw away the other screen's change.
    if (entries.some(e => e.kind === "commit")) return "the order was changed on another screen before its commit";
    if (entries.some(e => e.kind === "abandon")) return "the order was changed on another screen before its abandon";
    return "";
  }

  // Give the session's entries the revs they now stand on, starting at `rev`.
  function rebase(entries, rev) {
    for (const e of entries) {
      e.rev = rev;
      if (e.kind === "modify") rev += 1;
    }
  }

  // Returns whether the sender may go on.
  async function onStale(e) {
    const server = await fresh(e);
    if (!server) { schedule(); return false; }
    const outcome = update(st => {
      st.sessions[e.sid] = stripped(server);
      const mine = st.queue.filter(x => x.sid === e.sid);
      const why = clash(server, mine);
      if (why) {
        st.conflicts[e.sid] = {reason: "changed", detail: why, rev: server.rev, at: new Date().toISOString()};
        return "conflict";
      }
      rebase(mine, server.rev);
      return "rebased";
    });
    refresh(outcome === "rebased"
      ? ["This session was changed elsewhere (now rev " + server.rev + "); your changes were applied on top.", "warning"]
      : null);
    return true;
  }

  async function onRejected(e, err) {
    const server = e.kind === "create" ? null : await fresh(e);
    update(st => {
      if (server) st.sessions[e.sid] = stripped(server);
      st.conflicts[e.sid] = {reason: "rejected", entry: e.id, detail: describeError(err), at: new Date().toISOString()};
    });
    refresh();
    return true;
  }

  // -- the cashier settles a conflict ---------------------------------------------------

  function dropMine(sid) {
    const dropped = update(st => {
      const n = st.queue.filter(e => e.sid === sid).length;
      st.queue = st.queue.filter(e => e.sid !== sid);
      delete st.conflicts[sid];
      return n;
    });
    // A session whose creation was refused is nowhere now: leave it.
    if (sid === current() && !view(sid)) setSession(null);
    changed();
    say(dropped + " waiting change(s) dropped; the session is as the other screen left it.", "info");
  }

  // Apply the held changes on the server's state: ops on lines that are gone are left
  // out (a change left empty is dropped), the others are sent on the current rev.
  function applyMine(sid) {
    update(st => {
      const conflict = st.conflicts[sid];
      const server = st.sessions[sid];
      if (!conflict || !server || server.state !== "open") return;
      if (conflict.reason === "rejected") st.queue = st.queue.filter(e => e.id !== conflict.entry);
      const s = clone(server);
      const keep = new Set();
      for (const e of st.queue.filter(x => x.sid === sid)) {
        if (e.kind === "modify") {
          e.ops = e.ops.filter(op => (op.op === "add_line") !== s.items.some(l => l.line_id === op.line_id));
          if (!e.ops.length) continue;
          e.seen = {};
          for (const op of e.ops) {
            const line = s.items.find(l => l.line_id === op.line_id);
            if (op.op !== "add_line" && line) e.seen[line.line_id] = {sku: line.sku, qty: line.qty, unit_price_q: line.unit_price_q};
          }
          applyOps(s, e.ops, false);
        }
        keep.add(e.id);
      }
      st.queue = st.queue.filter(e => e.sid !== sid || keep.has(e.id));
      rebase(st.queue.filter(e => e.sid === sid), server.rev);
      delete st.conflicts[sid];
    });
    changed();
  }

  // -- what the page shows ----------------------------------------------------------------

  function current() {
    const s = typeof pos !== "undefined" ? pos.session : null;
    return s ? sidOf(s.channel_code, s.session_key) : null;
  }

  // Redraw the session on screen from the store (the sender or another tab changed it).
  function refresh(message) {
    const sid = current();
    if (sid && typeof setSession === "function") {
      const s = view(sid);
      if (s) setSession(s);
    }
    if (message) say(message[0], message[1]);
    render();
  }

  function synced(e, answer) {
    const mine = e.sid === current();
    refresh();
    if (e.kind === "commit" && mine) {
      const replayed = answer.headers.get("Idempotent-Replayed") === "true" ? " (replayed)" : "";
      say("Order " + answer.data.order_ref + " committed: " + formatMoney(answer.data.total_q, answer.data.currency) +
          replayed + ".", "success");
    } else if (e.kind === "abandon" && mine) {
      say("Session " + e.session_key + " abandoned.", "info");
    }
  }

  function badge() {
    let node = document.getElementById("net");
    if (!node) {
      node = el("span", {id: "net", class: "net-badge", role: "status"});
      const bar = document.querySelector(".bar");
      if (bar) bar.append(node);
    }
    return node;
  }

  // Whether a reload without the network opens this page (see keepPage).
  function copySign() {
    let node = document.getElementById("offline-ready");
    if (!node) {
      node = el("span", {id: "offline-ready", class: "offline-ready"});
      const net = badge();
      net.after(node);
    }
    node.hidden = pageCopy === "pending";
    node.dataset.state = pageCopy;
    node.className = "offline-ready " + pageCopy;
    if (pageCopy === "ready") {
      node.textContent = "✓ Ready offline";
      node.title = "This page is kept in the browser: it opens without the network, and sales wait to be sent.";
    } else {
      node.textContent = "Reload needs the network";
      node.title = "This browser keeps no copy of the page here (service workers need https:// or localhost): " +
                   "selling offline works until the page is reloaded.";
    }
  }

  function panel() {
    let node = document.getElementById("conflict");
    if (!node) {
      node = el("div", {id: "conflict", class: "message conflict", role: "alert"});
      const message = document.getElementById("message");
      if (message) message.after(node);
    }
    return node;
  }

  function render() {
    const st = load();
    const n = st.queue.length;
    const held = Object.keys(st.conflicts).length;
    const node = badge();
    const online = reachable && navigator.onLine;
    const who = signedIn();
    const mineToSend = who === USER && USER !== "";
    node.hidden = online && mineToSend && !n && !held;
    node.className = "net-badge " + (online && mineToSend ? "online" : "offline");
    node.dataset.waiting = String(n);
    const state = !mineToSend ? (who ? "Another cashier signed in" : "Signed out") : online ? "Online" : "Offline";
    node.textContent = state + " · " + n + " waiting" + (held ? " · " + held + " conflict" : "");
    copySign();

    const box = panel();
    const sid = current();
    const conflict = sid && st.conflicts[sid];
    box.hidden = !conflict;
    if (!conflict) { box.replaceChildren(); delete box.dataset.drawn; return; }
    const server = st.sessions[sid];
    const heldCount = st.queue.filter(e => e.sid === sid).length;
    // Redraw only what changed, so that a button is not replaced under the cashier's tap.
    const drawn = JSON.stringify([sid, conflict, heldCount, server && server.state]);
    if (box.dataset.drawn === drawn) return;
    box.dataset.drawn = drawn;
    const title = conflict.reason === "rejected" ? "A waiting change was refused: " : "Conflict: ";
    box.replaceChildren(
      el("strong", {}, title), conflict.detail + ". ",
      "The order shows the session as the server has it; " + heldCount + " change(s) of this terminal wait. ",
      el("button", {class: "small", id: "conflict-drop", onclick: () => dropMine(sid)}, "Keep theirs, drop mine"),
    );
    if (server && server.state === "open") {
      box.append(" ", el("button", {class: "small", id: "conflict-apply", onclick: () => applyMine(sid)},
                         "Apply mine on top"));
    }
  }

  return {handles, mode, user: () => USER, create, modify, commit, abandon, remember, rememberChannels, channels, knows, waiting, view: (c, k) => view(sidOf(c, k)),
          start, flush, render, dropMine, applyMine};
})();
