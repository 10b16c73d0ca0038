// A tiny client for omniman's HTTP API, used by the POS and the kitchen display.
// Session auth: the browser sends the session cookie; unsafe methods carry the CSRF token.
"use strict";

const API = "/api/";

function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

class ApiError extends Error {
  constructor(status, problem, headers) {
    super((problem && (problem.detail || problem.title)) || ("HTTP " + status));
    this.status = status;
    this.problem = problem || {};
    this.code = this.problem.code || "";
    this.headers = headers;
  }
}

async function api(method, path, body, extraHeaders) {
  const headers = {"Accept": "application/json", ...(extraHeaders || {})};
  const init = {method, headers, credentials: "same-origin"};
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  const resp = await fetch(API + path, init);
  const text = await resp.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch (e) { data = {detail: text.slice(0, 200)}; }
  }
  if (!resp.ok) throw new ApiError(resp.status, data, resp.headers);
  return {status: resp.status, data, headers: resp.headers};
}

function formatMoney(q, currency) {
  const value = (q || 0) / 100;
  try {
    return new Intl.NumberFormat(undefined, {style: "currency", currency: currency || "BRL"}).format(value);
  } catch (e) {
    return (currency || "") + " " + value.toFixed(2);
  }
}

function newKey(prefix) {
  const rnd = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2)).replace(/-/g, "");
  return prefix + "-" + rnd.slice(0, 16).toUpperCase();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// A line's options as the counter reads them: "OAT, 2× SHOT".
function optionsText(options) {
  return (options || []).map(o => (o.qty > 1 ? o.qty + "× " : "") + o.code).join(", ");
}

function describeError(err) {
  if (!(err instanceof ApiError)) return String(err);
  const p = err.problem;
  const tag = " [" + err.status + (err.code ? " " + err.code : "") + "]";
  const title = p.title || "Error";
  // The most precise part: the fields at fault, else the reasons, else the detail.
  if (Array.isArray(p.errors) && p.errors.length) {
    return title + tag + ": " + p.errors.map(e => (e.pointer || "") + " " + (e.detail || e.code)).join("; ");
  }
  if (Array.isArray(p.reasons) && p.reasons.length) {
    const reasons = p.reasons.map(r => typeof r === "string" ? r : (r.detail || r.message || r.code || JSON.stringify(r)));
    return title + tag + ": " + reasons.map(r => r.replace(/\.$/, "")).join("; ") + ".";
  }
  return title + tag + (p.detail ? ": " + p.detail : "");
}
