// The POS page's service worker (served at /pos/sw.js, so that it controls /pos/):
// when the network is down, a reload of the POS page is answered from the copy that
// offline.js keeps in the Cache API (the page, its scripts and its styles). Pages
// and files come from the network first, so a working network always gives fresh
// ones; the API (/api/) is never touched: offline.js queues those requests itself.
"use strict";

const CACHE = "omniman-pos-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || url.pathname.startsWith("/api/")) return;
  event.respondWith((async () => {
    try {
      return await fetch(request);
    } catch (err) {
      const cached = await caches.match(request, {cacheName: CACHE});
      if (cached) return cached;
      throw err;
    }
  })());
});
