"""The café's pages. They only render HTML; everything they show or change goes
through the public HTTP API at /api/ from the browser (session auth + CSRF)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from cafe.catalog import OPTION_GROUPS
from cafe.models import Product
from omniman.models import Channel

# The kitchen's columns: the statuses an order waits in before it is done.
KDS_COLUMNS = ["new", "preparing", "ready"]


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "cafe/index.html")


@login_required
@ensure_csrf_cookie
def pos(request: HttpRequest) -> HttpResponse:
    products = Product.objects.all()
    option_groups = {
        sku: [{"code": g.code, "options": dict(g.options), "min": g.min, "max": g.max} for g in groups]
        for sku, groups in OPTION_GROUPS.items()
    }
    return render(request, "cafe/pos.html", {"products": products, "option_groups": option_groups})


def pos_service_worker(request: HttpRequest) -> HttpResponse:
    """The POS page's service worker (cafe/pos-sw.js), served under /pos/ so that it
    may answer for the page when the network is down (see offline.js)."""
    path = finders.find("cafe/pos-sw.js")
    with open(path, encoding="utf-8") as f:
        body = f.read()
    return HttpResponse(body, content_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})


@login_required
@ensure_csrf_cookie
def kds(request: HttpRequest) -> HttpResponse:
    # The flows are configuration, rendered into the page; the orders themselves come
    # from the API (orders/stream/).
    flows = {c.code: {k: list(v) for k, v in c.conf.order_flow.items()} for c in _visible_channels(request)}
    return render(request, "cafe/kds.html", {"flows": flows, "columns": KDS_COLUMNS})


def _visible_channels(request: HttpRequest) -> list[Channel]:
    channels = Channel.objects.filter(is_active=True)
    if not request.user.is_superuser:
        channels = channels.filter(grants__user=request.user)
    return list(channels)
