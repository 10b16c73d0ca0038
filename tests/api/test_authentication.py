"""omniman_api.authentication.TokenAuthentication answers exactly as DRF's class does."""

from __future__ import annotations

import pytest
from django.db.models.query import QuerySet
from rest_framework.authtoken.models import Token

from omniman_api.authentication import TokenAuthentication
from tests.api.conftest import Client, make_user

pytestmark = pytest.mark.django_db



class Bearer(TokenAuthentication):
    keyword = "Bearer"


DRF = "rest_framework.authentication.TokenAuthentication"
OURS = "omniman_api.authentication.TokenAuthentication"


def answers(settings, cls, headers):
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [cls]}
    out = []
    for header in headers:
        client = Client()
        if header is not None:
            client.credentials(HTTP_AUTHORIZATION=header)
        response = client.get("/api/channels/")
        out.append((response.status_code, response.content, response.get("WWW-Authenticate")))
    return out


def test_every_answer_is_drfs_own(settings, pos):
    active = Token.objects.create(user=make_user("clerk", pos))
    idle = make_user("gone", pos)
    idle.is_active = False
    idle.save()
    inactive = Token.objects.create(user=idle)
    headers = [None, f"Token {active.key}", f"token {active.key}", "Token nope", f"Token {inactive.key}", "Token",
               "Token a b", f"Bearer {active.key}", "Token caf\u00e9".encode().decode("latin-1")]
    ours = answers(settings, OURS, headers)
    assert ours == answers(settings, DRF, headers)
    assert [status for status, _, _ in ours] == [401, 200, 200, 401, 401, 401, 401, 401, 401]
    assert b"Invalid token." in ours[3][1] and b"User inactive or deleted." in ours[4][1]


def test_a_subclass_keeps_its_keyword_and_model(settings, pos):
    token = Token.objects.create(user=make_user("clerk", pos))
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": ["tests.api.test_authentication.Bearer"]}
    client = Client()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert client.get("/api/channels/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/channels/").status_code == 401


def test_the_token_costs_one_statement_and_no_queryset(settings, pos, django_assert_num_queries, monkeypatch):
    token = Token.objects.create(user=make_user("clerk", pos))
    settings.REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [OURS]}
    client = Client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.get("/api/channels/")
    built = []
    original = QuerySet.filter

    def counting(self, *args, **kwargs):
        built.append(self.model.__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(QuerySet, "filter", counting)
    with django_assert_num_queries(2):  # the token with its user, the channels
        assert client.get("/api/channels/").status_code == 200
    assert "Token" not in built  # the token's query was built once, before
