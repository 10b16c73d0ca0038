from __future__ import annotations

import pytest

from omniman.models import Session
from omniman.services import create_session

from .conftest import data, problem

pytestmark = pytest.mark.django_db


def make(n: int, prefix: str = "S") -> None:
    for i in range(n):
        create_session(channel="pos", session_key=f"{prefix}{i:04d}")


def walk(api, url: str) -> list[str]:
    keys = []
    while url:
        body = data(api.get(url))
        keys += [x["session_key"] for x in body["results"]]
        url = body["next"]
    return keys


def test_pages_are_newest_first_and_cover_everything_once(api):
    make(23)
    first = data(api.get("/api/sessions/?page_size=10"))
    assert first["previous"] is None and len(first["results"]) == 10
    assert first["results"][0]["session_key"] == "S0022"
    keys = walk(api, "/api/sessions/?page_size=10")
    assert keys == [f"S{i:04d}" for i in reversed(range(23))]


def test_previous_walks_back(api):
    make(12)
    page1 = data(api.get("/api/sessions/?page_size=5"))
    page2 = data(api.get(page1["next"]))
    back = data(api.get(page2["previous"]))
    assert back["results"] == page1["results"]
    assert back["next"] is not None


def test_page_size_default_and_clamp(api):
    make(120)
    assert len(data(api.get("/api/sessions/"))["results"]) == 50
    assert len(data(api.get("/api/sessions/?page_size=1000"))["results"]) == 100
    problem(api.get("/api/sessions/?page_size=abc"), 400, "validation_error")
    problem(api.get("/api/sessions/?page_size=0"), 400, "validation_error")


def test_stable_under_concurrent_inserts(api):
    make(10)
    page1 = data(api.get("/api/sessions/?page_size=4"))
    make(5, prefix="NEW")  # rows inserted between two page reads
    rest = walk(api, page1["next"])
    seen = [x["session_key"] for x in page1["results"]] + rest
    assert seen == [f"S{i:04d}" for i in reversed(range(10))]
    assert Session.objects.count() == 15


def test_filters_survive_in_the_next_link(api):
    make(6)
    url = data(api.get("/api/sessions/?page_size=2&state=open"))["next"]
    assert "state=open" in url and "page_size=2" in url
