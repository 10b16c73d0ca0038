// The POS payment panel: once the session is committed, take payment against the
// order (cash with the change shown, a card through the demo terminal, several
// payments for a split bill, a tip) and refund a line. omniman.contrib.payments
// over the HTTP API; every payment and refund carries its own idempotency key, kept
// until the request has a definitive answer so that a retry never pays twice.
"use strict";

const pay = {
  ref: null,
  order: null,
  ledger: {payments: [], refunds: []},
  keys: {},          // what -> the idempotency key of the act in flight
  lastChange: null,  // the change of the last cash payment, shown until the next act
};

const $pay = (id) => document.getElementById(id);
const toQ = (text) => {
  const value = String(text || "").trim().replace(",", ".");
  if (!value) return 0;
  if (!/^\d+(\.\d{0,2})?$/.test(value)) return NaN;
  const [units, cents = ""] = value.split(".");
  return Number(units) * 100 + Number((cents + "00").slice(0, 2));
};
const fromQ = (q) => (q / 100).toFixed(2);
const money = (q) => formatMoney(q, pay.order ? pay.order.currency : "BRL");

async function loadPayment(ref) {
  const path = "orders/" + encodeURIComponent(ref) + "/";
  const [{data: order}, {data: ledger}] = await Promise.all([api("GET", path), api("GET", path + "payments/")]);
  if (pay.ref !== ref) return;  // another order was committed meanwhile
  pay.order = order;
  pay.ledger = ledger;
  renderPayment();
  // A card waits for its terminal (the payments.settle directive): look again shortly.
  if (ledger.payments.some(p => p.status === "pending") || ledger.refunds.some(r => r.status === "pending")) {
    setTimeout(() => pay.ref === ref && loadPayment(ref).catch(showPayError), 500);
  }
}

function showPayError(err) {
  const box = $pay("pay-error");
  if (box) box.textContent = describeError(err);
}

async function keyed(what, method, path, body) {
  pay.keys[what] = pay.keys[what] || newKey(what.toUpperCase());
  try {
    const answer = await api(method, path, {...body, idempotency_key: pay.keys[what]});
    delete pay.keys[what];
    return answer;
  } catch (err) {
    if (err instanceof ApiError && err.status < 500) delete pay.keys[what];  // a 4xx frees the key
    throw err;
  }
}

async function takePayment(event) {
  event.preventDefault();
  const method = $pay("pay-method").value;
  const amount = toQ($pay("pay-amount").value);
  const tip = toQ($pay("pay-tip").value);
  const tendered = method === "cash" ? toQ($pay("pay-tendered").value) : 0;
  if ([amount, tip, tendered].some(Number.isNaN)) return showPayError("Amounts are like 12.50.");
  const body = {method, amount_q: amount};
  if (tip) body.tip_q = tip;
  if (tendered) body.tendered_q = tendered;
  try {
    const {data} = await keyed("pay", "POST", "orders/" + encodeURIComponent(pay.ref) + "/payments/", body);
    pay.lastChange = data.tendered_q === null ? null : data.change_q;
    await loadPayment(pay.ref);
  } catch (err) {
    showPayError(err);
  }
}

async function refundLine(item) {
  const left = Number(item.qty) - refundedQty(item.line_id);
  const qty = Math.min(1, left);
  try {
    await keyed("refund-" + item.line_id, "POST", "orders/" + encodeURIComponent(pay.ref) + "/refunds/",
                {lines: [{line_id: item.line_id, qty: String(qty)}], reason: "refunded at the counter"});
    pay.lastChange = null;
    await loadPayment(pay.ref);
  } catch (err) {
    showPayError(err);
  }
}

function refundedQty(lineId) {
  let qty = 0;
  for (const r of pay.ledger.refunds) {
    if (r.status === "failed") continue;
    for (const l of r.lines) if (l.line_id === lineId) qty += Number(l.qty);
  }
  return qty;
}

function updateChange() {
  const shown = $pay("pay-change-preview");
  if (!shown) return;
  const cash = $pay("pay-method").value === "cash";
  $pay("pay-tendered-label").hidden = !cash;
  const change = toQ($pay("pay-tendered").value) - toQ($pay("pay-amount").value) - toQ($pay("pay-tip").value);
  shown.textContent = cash && toQ($pay("pay-tendered").value) && change >= 0 ? "Change " + money(change) : "";
}

function renderPayment() {
  const box = $pay("payment");
  const o = pay.order;
  if (!o) { box.hidden = true; return; }
  const held = pay.ledger.payments.filter(p => p.status === "pending").reduce((s, p) => s + p.amount_q, 0);
  const open = Math.max(0, o.amount_due_q - held);
  const rows = pay.ledger.payments.map(p => el("tr", {class: "pay-row", dataset: {status: p.status, method: p.method}},
    el("td", {}, p.method), el("td", {class: "num"}, money(p.amount_q)),
    el("td", {class: "num"}, p.tip_q ? "tip " + money(p.tip_q) : ""),
    el("td", {class: "num"}, p.tendered_q === null ? "" : "change " + money(p.change_q)),
    el("td", {class: "pay-status"}, p.status)));
  const refunds = pay.ledger.refunds.map(r => el("tr", {class: "refund-row", dataset: {status: r.status}},
    el("td", {}, "refund"), el("td", {class: "num"}, "−" + money(r.amount_q)),
    el("td", {}, r.lines.map(l => l.qty + " × " + l.line_id).join(", ")), el("td", {}, ""),
    el("td", {class: "pay-status"}, r.status)));
  const refundable = o.amount_paid_q - o.amount_refunded_q > 0;
  const lines = o.items.map(item => {
    const left = Number(item.qty) - refundedQty(item.line_id);
    const button = el("button", {type: "button", class: "refund-line", dataset: {lineId: item.line_id},
                                 onclick: () => refundLine(item)}, "Refund 1 " + item.sku);
    if (!refundable || left <= 0) button.disabled = true;
    return button;
  });
  box.replaceChildren(
    el("h3", {}, "Payment"),
    el("p", {class: "due"}, "Due ", el("strong", {id: "pay-due"}, money(o.amount_due_q)),
       " · ", el("span", {id: "pay-status"}, o.payment_status),
       " · received ", el("span", {id: "pay-paid"}, money(o.amount_paid_q)),
       o.amount_refunded_q ? " · refunded " + money(o.amount_refunded_q) : "",
       o.tip_q ? " · tips " + money(o.tip_q) : ""),
    pay.lastChange !== null ? el("p", {class: "change", id: "pay-change"}, "Change " + money(pay.lastChange)) : "",
    el("form", {id: "pay-form", onsubmit: takePayment},
      el("label", {}, "Method", el("select", {id: "pay-method", onchange: updateChange},
        el("option", {value: "cash"}, "Cash"), el("option", {value: "card"}, "Card"))),
      el("label", {}, "Amount", el("input", {id: "pay-amount", inputmode: "decimal", value: fromQ(open), oninput: updateChange})),
      el("label", {}, "Tip", el("input", {id: "pay-tip", inputmode: "decimal", value: "", oninput: updateChange})),
      el("label", {id: "pay-tendered-label"}, "Tendered", el("input", {id: "pay-tendered", inputmode: "decimal", value: "", oninput: updateChange})),
      el("button", {type: "submit", id: "pay-submit", class: "primary"}, "Take payment"),
      el("span", {id: "pay-change-preview"})),
    el("p", {id: "pay-error", class: "pay-error"}),
    el("table", {id: "pay-ledger"}, el("tbody", {}, ...rows, ...refunds)),
    el("div", {class: "refunds"}, ...lines),
  );
  if (open === 0) $pay("pay-submit").disabled = true;
  box.hidden = false;
  updateChange();
}

// The POS page sets #order-ref when its session is committed (or a committed session
// is opened): follow it.
document.addEventListener("DOMContentLoaded", () => {
  const target = $pay("order-ref");
  const follow = () => {
    const ref = target.textContent.trim();
    if (ref === (pay.ref || "")) return;
    pay.ref = ref || null;
    pay.order = null;
    pay.ledger = {payments: [], refunds: []};
    pay.lastChange = null;
    pay.keys = {};
    if (!ref) { renderPayment(); return; }
    loadPayment(ref).catch(showPayError);
  };
  new MutationObserver(follow).observe(target, {childList: true, characterData: true, subtree: true});
  follow();
});
