"""The HTTP reference in the docs is generated from the schema the API serves
(``docs/_ext/openapi_reference.py``): every operation, schema and property of the live
``schema/`` appears in it, and the generated reStructuredText is clean."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docutils.core import publish_doctree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import openapi_reference as ref  # noqa: E402

PREFIX = "/api"  # where tests/urls.py mounts omniman_api.urls


@pytest.fixture(scope="module")
def live() -> dict[str, Any]:
    """The document as a client gets it from ``GET /api/schema/?format=json``."""
    from django.test import Client

    response = Client().get(f"{PREFIX}/schema/?format=json")
    assert response.status_code == 200
    return json.loads(response.content)


@pytest.fixture(scope="module")
def rst() -> str:
    doc = ref.load()
    parts = ["HTTP reference", "=" * 14, ""]
    for part in ref.PARTS:
        parts += [part.title(), "-" * len(part), "", *ref.render(doc, part, download="../"), ""]
    return "\n".join(parts)


def test_every_live_operation_is_documented(live: dict[str, Any], rst: str) -> None:
    lines = set(rst.splitlines())
    ops = [(m, p) for p, item in live["paths"].items() for m in item if m in ref.METHODS]
    assert len(ops) >= 15
    for method, path in ops:
        assert path.startswith(PREFIX + "/"), path
        heading = ref._heading(method, path.removeprefix(PREFIX))
        assert heading in lines, f"{heading} is served but missing from docs/ref/http.rst"


def test_every_schema_and_property_is_documented(live: dict[str, Any], rst: str) -> None:
    lines = set(rst.splitlines())
    for name, schema in live["components"]["schemas"].items():
        assert name in lines, f"schema {name} is missing"
        for prop in schema.get("properties", {}):
            assert f"``{prop}``" in rst, f"{name}.{prop} is missing"


def test_parameters_bodies_and_responses(rst: str) -> None:
    section = rst.split("POST /sessions/{session_key}/modify/\n", 1)[1].split("\nPOST /", 1)[0]
    assert "**Apply ops to a session.**" in section
    assert "``If-Match``" in section and "``Idempotency-Key``" in section
    assert "   * - ``session_key``\n     - path\n     - string\n     - yes" in section
    assert "Request body (required, ``application/json``): `ModifyInRequest`_" in section
    assert "   * - ``200``\n     - OK\n     - `SessionOut`_ as ``application/json``\n     - ``ETag``, ``Idempotent-Replayed``" in section
    assert "   * - ``default``" in section and "`Problem`_ as ``application/problem+json``" in section
    health = rst.split("GET /health/\n", 1)[1].split("\nGET /", 1)[0]
    assert ":Authentication: none" in health


def test_the_generated_rst_is_clean(rst: str) -> None:
    """Plain docutils, warnings as errors: every `Schema`_ link resolves, every table parses."""
    errors = io.StringIO()
    publish_doctree(rst, settings_overrides={"halt_level": 2, "report_level": 2, "warning_stream": errors})
    assert errors.getvalue() == ""


@pytest.mark.skipif(os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="built in the SQLite run")
def test_the_docs_build_writes_the_document(tmp_path: Path) -> None:
    """``sphinx-build -W`` renders the reference and writes openapi.json/.yaml beside it."""
    out = tmp_path / "html"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), "docs", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    served = json.loads((out / "openapi.json").read_text())
    assert served == json.loads(json.dumps(ref.load()))
    assert (out / "openapi.yaml").read_text().startswith("openapi: 3.")
    page = (out / "ref" / "http.html").read_text()
    assert 'href="../openapi.json"' in page
    for path in served["paths"]:
        assert path in page
