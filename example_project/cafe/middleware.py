"""Tell the café's pages who is signed in, in a cookie their scripts read.

The POS page keeps its offline outbox per cashier (offline.js): the ``cafe_user``
cookie names the signed-in user (URL-encoded username), so a second cashier on the
same browser gets an outbox of their own and never sends the first one's. It is not
a credential (the session cookie is): it only picks which outbox a page uses, and it
goes when the user signs out. Token clients send no cookies and are left alone."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from django.conf import settings
from django.http import HttpRequest, HttpResponse

COOKIE = "cafe_user"


class CafeUserCookie:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        had = request.COOKIES.get(COOKIE)
        if had is None and settings.SESSION_COOKIE_NAME not in request.COOKIES:
            return response  # no browser session: nothing to say
        user = getattr(request, "user", None)
        name = quote(user.get_username(), safe="") if user is not None and user.is_authenticated else ""
        if name and name != had:
            response.set_cookie(
                COOKIE, name, samesite="Lax", secure=settings.SESSION_COOKIE_SECURE,
                max_age=settings.SESSION_COOKIE_AGE,
            )
        elif not name and had is not None:
            response.delete_cookie(COOKIE, samesite="Lax")
        return response
