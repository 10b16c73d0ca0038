"""The café's pages. They only render HTML; everything they show or change goes
through the public HTTP API at /api/ from the browser (session auth + CSRF)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from cafe import kitchen
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
    offline = {c.code: offline_mode(c) for c in _visible_channels(request)}
    return render(request, "cafe/pos.html",
                  {"products": products, "option_groups": option_groups, "offline_modes": offline})


def offline_mode(channel: Channel) -> str:
    """How the POS page sells on ``channel`` while the network is down (offline.js):

    - ``exact``: the terminal prices the lines (external pricing) and no modifier adds
      to them, so the page's total is the server's;
    - ``estimate``: the page queues the sale but cannot know every adjustment (the
      catalog's prices may have moved; tax, coupons and other modifiers run on the
      server), so it shows its total as an estimate until the server answers;
    - ``online``: a check must pass before the commit (``required_checks_on_commit``)
      and only the server runs it, so the page refuses to sell without a connection.
    """
    conf = channel.conf
    if conf.required_checks_on_commit:
        return "online"
    if conf.pricing_policy == "external" and not conf.modifiers:
        return "exact"
    return "estimate"


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


@login_required
def kds_cancelled(request: HttpRequest) -> JsonResponse:
    """The POS orders cancelled lately (written by the ``kitchen.cancelled`` hook),
    for the kitchen display; none for a user who cannot see the pos channel."""
    visible = any(c.code == "pos" for c in _visible_channels(request))
    return JsonResponse({"cancelled": kitchen.recent_cancellations() if visible else []})


def _visible_channels(request: HttpRequest) -> list[Channel]:
    channels = Channel.objects.filter(is_active=True)
    if not request.user.is_superuser:
        channels = channels.filter(grants__user=request.user)
    return list(channels)
