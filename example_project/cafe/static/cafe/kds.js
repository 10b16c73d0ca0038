// The kitchen display: follows GET orders/stream/ by cursor (long poll) and moves
// orders along their channel's flow with POST orders/{ref}/transition/.
"use strict";

const kds = {
  flows: JSON.parse(document.getElementById("order-flows").textContent),
  columns: JSON.parse(document.getElementById("kds-columns").textContent),
  orders: new Map(),   // ref -> order
  cursor: null,
  backoff: 1000,
};

const $ = (id) => document.getElementById(id);

function say(text, kind) {
  const box = $("message");
  box.textContent = text;
  box.className = "message " + (kind || "info");
  box.hidden = !text;
}

function streamState(text, kind) {
  const badge = $("stream-state");
  badge.textContent = text;
  badge.className = "badge " + kind;
}

function nextStatuses(order) {
  const flow = kds.flows[order.channel_code] || {};
  return flow[order.status] || [];
}

function card(order) {
  const items = el("ul", {class: "items"},
    ...(order.items || []).map(i => el("li", {}, el("strong", {}, i.qty + " × "), i.sku,
      i.options && i.options.length ? el("span", {class: "options"}, " (" + optionsText(i.options) + ")") : "")));
  const buttons = el("div", {class: "moves"},
    ...nextStatuses(order).map(to => el("button", {
      class: to === "cancelled" ? "small danger" : "primary",
      dataset: {to},
      onclick: () => transition(order, to),
    }, "→ " + to)));
  const when = order.created_at ? new Date(order.created_at).toLocaleTimeString() : "";
  return el("article", {class: "ticket", id: "order-" + order.ref, dataset: {ref: order.ref, status: order.status}},
    el("header", {},
      order.number != null ? el("strong", {class: "number"}, "#" + order.number) : "",
      el("span", {class: "ref"}, order.ref), el("span", {class: "channel"}, order.channel_code), el("time", {}, when)),
    items,
    el("p", {class: "total"}, formatMoney(order.total_q, order.currency), " · ", el("span", {class: "status"}, order.status)),
    buttons);
}

function place(order) {
  kds.orders.set(order.ref, order);
  const old = document.getElementById("order-" + order.ref);
  if (old) old.remove();
  const column = kds.columns.includes(order.status) ? $("col-" + order.status) : $("col-done");
  column.append(card(order));
}

async function transition(order, to) {
  try {
    const {data} = await api("POST", "orders/" + encodeURIComponent(order.ref) + "/transition/", {to});
    place(data);
    say("");
  } catch (err) {
    say(describeError(err), "error");
    if (err instanceof ApiError && (err.status === 409 || err.status === 412)) {
      // Someone else moved it: show where it is now.
      try {
        const {data} = await api("GET", "orders/" + encodeURIComponent(order.ref) + "/");
        place(data);
      } catch (e) { /* keep the message */ }
    }
  }
}

async function follow() {
  for (;;) {
    const params = new URLSearchParams({timeout: "20"});
    if (kds.cursor) params.set("after", kds.cursor);
    try {
      const {data} = await api("GET", "orders/stream/?" + params.toString());
      streamState("live", "ok");
      kds.backoff = 1000;
      for (const order of data.results || []) place(order);
      if (data.cursor) kds.cursor = data.cursor;
    } catch (err) {
      streamState("reconnecting…", "bad");
      say(describeError(err), "error");
      await new Promise(r => setTimeout(r, kds.backoff));
      kds.backoff = Math.min(kds.backoff * 2, 15000);
    }
  }
}

// The stream brings new orders; moves made on another screen are picked up by
// re-reading the newest orders now and then.
async function refreshShown() {
  try {
    const {data} = await api("GET", "orders/?page_size=100");
    for (const order of data.results || []) {
      const shown = kds.orders.get(order.ref);
      if (shown && shown.status !== order.status) place(order);
    }
  } catch (err) { /* the stream reports connection problems */ }
}

// Orders cancelled at the counter: the kitchen.cancelled hook lists them for the
// kitchen (cafe/kitchen.py), with the cashier's reason.
async function showCancelled() {
  try {
    const url = JSON.parse(document.getElementById("kds-cancelled-url").textContent);
    const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (!response.ok) return;
    const {cancelled} = await response.json();
    const list = $("cancelled-list");
    list.replaceChildren(...cancelled.map((c) => el("li", {class: "cancelled-order", dataset: {ref: c.order_ref}},
      el("strong", {}, c.order_ref), c.reason ? " · " + c.reason : "")));
    $("cancelled").hidden = cancelled.length === 0;
  } catch (err) { /* shown again on the next poll */ }
}

document.addEventListener("DOMContentLoaded", () => {
  setInterval(refreshShown, 15000);
  showCancelled();
  setInterval(showCancelled, 5000);
  $("show-done").addEventListener("change", (e) => {
    document.querySelector(".column.done").hidden = !e.target.checked;
  });
  follow();
});
