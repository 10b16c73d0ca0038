"""Compression that keeps the API's ETags strong.

Django's ``GZipMiddleware`` turns a strong ``ETag`` into a weak one when it compresses
(RFC 9110: the compressed bytes are another representation). The API compares
``If-Match`` strongly, so a client that sent ``Accept-Encoding: gzip`` (browsers,
``requests``, ``curl --compressed``) and echoed a weakened tag would get 412 on every
modify. This middleware compresses everything else (lists, the order stream, errors,
the schema) exactly as Django's does, random padding against BREACH included, and
leaves answers that carry a strong ``ETag`` (one session or order) as they are."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware as DjangoGZipMiddleware


class GZipMiddleware(DjangoGZipMiddleware):
    """``django.middleware.gzip.GZipMiddleware`` except for answers with a strong ETag.

    Put it first in ``MIDDLEWARE``, in place of Django's."""

    def process_response(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        if response.get("ETag", "").startswith('"'):
            return response
        return super().process_response(request, response)
