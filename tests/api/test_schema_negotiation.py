"""``GET schema/`` serves the OpenAPI document as YAML or JSON by negotiation, and a
browser (or any other Accept) gets JSON, never a 406."""

from __future__ import annotations

import orjson
import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("accept", "query", "served"),
    [
        (None, "", "application/vnd.oai.openapi"),  # the default stays YAML
        ("application/yaml", "", "application/yaml"),
        ("application/json", "", "application/json"),
        ("application/vnd.oai.openapi+json", "", "application/vnd.oai.openapi+json"),
        ("text/html", "?format=yaml", "application/vnd.oai.openapi"),
        # A browser, and any Accept the document has no form for: JSON, never a 406.
        ("text/html", "", "application/json"),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "", "application/json"),
        ("application/xml", "", "application/json"),
    ],
)
def test_schema_negotiates_json_or_yaml_and_answers_a_browser_with_json(anon, accept, query, served):
    import yaml

    extra = {"HTTP_ACCEPT": accept} if accept else {}
    response = anon.get(f"/api/schema/{query}", **extra)
    assert response.status_code == 200
    assert response["Content-Type"].split(";")[0] == served
    parse = orjson.loads if served.endswith("json") else yaml.safe_load
    assert parse(response.content)["openapi"].startswith("3.")
