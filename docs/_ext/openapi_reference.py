"""The HTTP reference, generated at build time from the OpenAPI document the API serves.

``.. omniman-openapi:: operations`` renders an index of the operations and then one
section per operation (method and path, summary and description, authentication,
parameters, request body, responses); ``.. omniman-openapi:: schemas`` renders one
section per component schema with its properties. Both come from
:func:`omniman_api.schema.document`, the generator behind ``schema/``, so a new
endpoint or field cannot be missing from the docs. The HTML build also writes the
document itself as ``openapi.json`` and ``openapi.yaml`` at the root of the output,
and the operations part links to them.

Descriptions in the document are read as reStructuredText (they use ````literal````
markup, which CommonMark renders as code too). :func:`render` is plain text in, rst
lines out, so tests can check it without Sphinx.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.parsing import nested_parse_to_nodes

PARTS = ("operations", "schemas")
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")
FILES = ("openapi.json", "openapi.yaml")
SCHEMA_PREFIX = "#/components/schemas/"


def load() -> dict[str, Any]:
    """The document, paths relative to where the host mounts ``omniman_api.urls``."""
    from omniman_api.schema import document

    return document()


# -- rendering -----------------------------------------------------------------------


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _literal(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return f"``{text}``" if text else '``""``'


def type_of(schema: dict[str, Any] | None) -> str:
    """A schema as a short rst phrase: ``string (date-time)``, ``array of `Line`_``..."""
    if not schema:
        return "any"
    if "$ref" in schema:
        return f"`{schema['$ref'].removeprefix(SCHEMA_PREFIX)}`_"
    for key, joiner in (("oneOf", " or "), ("anyOf", " or "), ("allOf", " and ")):
        if key in schema:
            text = joiner.join(type_of(s) for s in schema[key])
            return f"{text}, nullable" if schema.get("nullable") else text
    kind = schema.get("type", "any")
    nullable = bool(schema.get("nullable"))
    if isinstance(kind, list):  # OpenAPI 3.1: a list of types, "null" for nullable
        nullable = nullable or "null" in kind
        kinds = [k for k in kind if k != "null"]
        if len(kinds) != 1:
            text = " or ".join(kinds) or "null"
            return f"{text}, nullable" if nullable and kinds else text
        kind = kinds[0]
    if kind == "array":
        text = f"array of {type_of(schema.get('items'))}"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        inner = schema["additionalProperties"]
        text = f"object of {type_of(inner)}" if inner else "object"
    else:
        text = kind
        if "format" in schema:
            text += f" ({schema['format']})"
    if nullable:
        text += ", nullable"
    return text


def constraints(schema: dict[str, Any] | None) -> str:
    """Enum values, bounds and patterns of a schema, as rst."""
    if not schema:
        return ""
    out = []
    if "enum" in schema:
        out.append("one of " + ", ".join(_literal(v) for v in schema["enum"] if v is not None))
    for key, label in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("multipleOf", "multiple of"),
                       ("minLength", "length ≥"), ("maxLength", "length ≤"),
                       ("minItems", "items ≥"), ("maxItems", "items ≤"),
                       ("x-max-depth", "nesting ≤"), ("x-max-json-bytes", "compact JSON bytes ≤")):
        if key in schema:
            out.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        out.append(f"pattern {_literal(schema['pattern'])}")
    return "; ".join(out)


def _describe(schema: dict[str, Any] | None, description: str | None = None) -> str:
    parts = [_one_line(description or (schema or {}).get("description")), constraints(schema)]
    return "; ".join(p for p in parts if p)


def _title(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def _table(caption: str, header: list[str], rows: list[list[str]], widths: list[int]) -> list[str]:
    lines = [f".. list-table:: {caption}", "   :header-rows: 1", f"   :widths: {' '.join(map(str, widths))}", ""]
    for row in [header, *rows]:
        for i, cell in enumerate(row):
            lines.append(f"   {'*' if i == 0 else ' '} -{' ' + cell if cell else ''}")
    return [*lines, ""]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) in the document's order."""
    return [(m, path, op) for path, item in doc.get("paths", {}).items() for m in METHODS if (op := item.get(m))]


def _heading(method: str, path: str) -> str:
    return f"{method.upper()} {path}"


def _phrase(status: str) -> str:
    try:
        return HTTPStatus(int(status)).phrase
    except ValueError:
        return ""


def _security(doc: dict[str, Any], op: dict[str, Any]) -> str:
    requirements = op.get("security", doc.get("security"))
    names = [name for req in requirements or [] for name in req]
    if not names:
        return "none"
    schemes = doc.get("components", {}).get("securitySchemes", {})
    described = []
    for name in dict.fromkeys(names):
        scheme = schemes.get(name, {})
        where = f"{scheme.get('in', '')} ``{scheme['name']}``" if "name" in scheme else scheme.get("scheme", "")
        described.append(f"{name} ({where.strip()})" if where.strip() else name)
    return " or ".join(described)


def render_operation(doc: dict[str, Any], method: str, path: str, op: dict[str, Any], char: str) -> list[str]:
    heading = _heading(method, path)
    lines = _title(heading, char)
    if op.get("summary"):
        lines += [f"**{_one_line(op['summary'])}.**", ""]
    if op.get("description"):
        lines += [*op["description"].strip().splitlines(), ""]
    meta = [f":Authentication: {_security(doc, op)}"]
    if op.get("operationId"):
        meta.append(f":Operation id: ``{op['operationId']}``")
    lines += [*meta, ""]

    params = op.get("parameters", [])
    if params:
        rows = [[f"``{p['name']}``", p.get("in", ""), type_of(p.get("schema")), "yes" if p.get("required") else "no",
                 _describe(p.get("schema"), p.get("description"))] for p in params]
        lines += _table("Parameters", ["name", "in", "type", "required", "description"], rows, [18, 8, 16, 8, 50])

    body = op.get("requestBody")
    if body:
        content = body.get("content", {})
        kinds = ", ".join(f"``{kind}``" for kind in content)
        schemas = " or ".join(dict.fromkeys(type_of(c.get("schema")) for c in content.values()))
        need = "required" if body.get("required") else "optional"
        lines += [f"Request body ({need}, {kinds}): {schemas}", ""]

    rows = []
    for status, response in op.get("responses", {}).items():
        content = response.get("content", {})
        shapes = "; ".join(f"{type_of(c.get('schema'))} as ``{kind}``" for kind, c in content.items()) or "no body"
        headers = ", ".join(f"``{name}``" for name in response.get("headers", {}))
        rows.append([f"``{status}``", _one_line(response.get("description")) or _phrase(status), shapes, headers])
    if rows:
        lines += _table("Responses", ["status", "description", "body", "headers"], rows, [10, 35, 35, 20])
    return lines


def render_schema(name: str, schema: dict[str, Any], char: str) -> list[str]:
    lines = _title(name, char)
    if schema.get("description"):
        lines += [_one_line(schema["description"]), ""]
    props = schema.get("properties")
    if props:
        required = set(schema.get("required", []))
        rows = [[f"``{prop}``", type_of(sub), "yes" if prop in required else "no", _describe(sub)]
                for prop, sub in props.items()]
        lines += _table("Properties", ["name", "type", "required", "description"], rows, [20, 25, 10, 45])
        if schema.get("additionalProperties") is False:
            lines += ["Any other field is refused (``unknown_field``).", ""]
    else:
        text = type_of(schema)
        extra = constraints(schema)
        lines += [f"A {text}{': ' + extra if extra else ''}." if text != "any" else "Any JSON value.", ""]
    return lines


def render(doc: dict[str, Any], part: str, char: str = "~", download: str | None = None) -> list[str]:
    """The rst lines of one part (``operations`` or ``schemas``) of the reference."""
    lines: list[str] = []
    if part == "operations":
        info = doc.get("info", {})
        lines += [f"Generated from the OpenAPI {doc.get('openapi', '3')} document of "
                  f"{info.get('title', 'the API')} {info.get('version', '')}".rstrip() + "."]
        if download is not None:
            base = download.rstrip("/") + "/" if download else ""
            links = " and ".join(f"`{name} <{base}{name}>`__" for name in FILES)
            lines[-1] += f" Download it as {links}."
        lines.append("")
        ops = operations(doc)
        rows = [[f"`{_heading(m, p)}`_", _one_line(op.get("summary"))] for m, p, op in ops]
        lines += _table("Operations", ["operation", "summary"], rows, [45, 55])
        for method, path, op in ops:
            lines += render_operation(doc, method, path, op, char)
    elif part == "schemas":
        for name, schema in doc.get("components", {}).get("schemas", {}).items():
            lines += render_schema(name, schema, char)
    else:
        raise ValueError(f"unknown part {part!r}: one of {', '.join(PARTS)}")
    return lines


# -- Sphinx ----------------------------------------------------------------------------


_CACHE: dict[str, dict[str, Any]] = {}


def _document() -> dict[str, Any]:
    """The document, generated once per build process."""
    if "doc" not in _CACHE:
        _CACHE["doc"] = load()
    return _CACHE["doc"]


class OpenAPIDirective(SphinxDirective):
    """``.. omniman-openapi:: operations|schemas``"""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        part = self.arguments[0]
        if part not in PARTS:
            raise self.error(f"omniman-openapi: unknown part {part!r}: one of {', '.join(PARTS)}")
        self.env.note_dependency(__file__)
        docs: set[str] = self.env.omniman_openapi_docs  # type: ignore[attr-defined]
        docs.add(self.env.docname)
        # The files are written at the root of the HTML output (see _write_files).
        download = "../" * self.env.docname.count("/")
        lines = render(_document(), part, download=download)
        return nested_parse_to_nodes(self.state, "\n".join(lines), source=f"<omniman-openapi {part}>",
                                     allow_section_headings=True)


def _init_env(app: Sphinx, env: Any, docnames: list[str]) -> None:
    if not hasattr(env, "omniman_openapi_docs"):
        env.omniman_openapi_docs = set()


def _purge(app: Sphinx, env: Any, docname: str) -> None:
    getattr(env, "omniman_openapi_docs", set()).discard(docname)


def _merge(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    env.omniman_openapi_docs |= getattr(other, "omniman_openapi_docs", set()) & docnames


def _outdated(app: Sphinx, env: Any, added: set[str], changed: set[str], removed: set[str]) -> list[str]:
    # The document comes from code, not from the page: read its pages again every build.
    return sorted(getattr(env, "omniman_openapi_docs", set()))


def _write_files(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    import yaml

    doc = _document()
    out = Path(app.outdir)
    (out / "openapi.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "openapi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("omniman-openapi", OpenAPIDirective)
    app.connect("env-before-read-docs", _init_env)
    app.connect("env-purge-doc", _purge)
    app.connect("env-merge-info", _merge)
    app.connect("env-get-outdated", _outdated)
    app.connect("build-finished", _write_files)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
