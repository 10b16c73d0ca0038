"""The café's pages. They only render HTML; everything they show or change goes
through the public HTTP API at /api/ from the browser (session auth + CSRF)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from cafe.models import Product


def index(request: HttpRequest) -> HttpResponse:
    return render(request, "cafe/index.html")


@login_required
@ensure_csrf_cookie
def pos(request: HttpRequest) -> HttpResponse:
    products = Product.objects.all()
    return render(request, "cafe/pos.html", {"products": products})


@login_required
@ensure_csrf_cookie
def kds(request: HttpRequest) -> HttpResponse:
    return render(request, "cafe/kds.html")
