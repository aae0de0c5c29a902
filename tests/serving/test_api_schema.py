"""The read API's served OpenAPI schema documents the query parameters each route reads.

No warehouse: the schema comes from the routes alone, and the one refusal checked (a route that
refuses a filter) is answered before any mart is read, from an empty snapshot.
"""

from __future__ import annotations

import inspect
import json
from collections import Counter

import duckdb
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from convo_warehouse.api import app as api

# What _scope reads from the query string: the period's days, then the filters.
SCOPE_PARAMETERS = ("start", "end", "period", "channel", "agent", "environment", "exclude_development", "variant")
# Routes that read the scope but refuse one of its parameters with a 400 (their day marts have no
# experiment variant), so they do not document it.
REFUSED = {"/api/abandon-turns": {"variant"}, "/api/timing": {"variant"}}


@pytest.fixture
def client(tmp_path):
    """The API over an empty snapshot (a DuckDB file without tables)."""
    version = tmp_path / "serving" / "versions" / "v1"
    version.mkdir(parents=True)
    duckdb.connect(str(version / "warehouse.duckdb")).close()
    (version / "manifest.json").write_text(json.dumps({"version": "v1", "tables": {}}))
    (tmp_path / "serving" / "current").symlink_to(version)
    with TestClient(api.create_app(api.ApiConfig(serving_dir=tmp_path / "serving")),
                    base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        yield client


def _handlers(app) -> dict[str, object]:
    """Each documented route's path -> the handler ``respond`` wraps (the function that reads the query)."""
    return {route.path: inspect.getclosurevars(route.endpoint).nonlocals["handler"]
            for route in app.routes if isinstance(route, Route) and route.include_in_schema}


def _calls(handler, function) -> bool:
    return function.__name__ in handler.__code__.co_names


def test_every_route_documents_the_scope_it_reads_each_parameter_once(client):
    assert set(SCOPE_PARAMETERS) <= set(api._scope.__code__.co_consts)  # the names _scope reads, as spelled there
    paths = client.get("/api/openapi.json").json()["paths"]
    handlers = _handlers(client.app)
    scoped = {path for path, handler in handlers.items() if _calls(handler, api._scope)}
    assert {"/api/metrics/{name}", "/api/funnels/{name}", "/api/abandon-turns", "/api/timing", "/api/models"} <= scoped
    for path, handler in handlers.items():
        parameters = paths[path]["get"].get("parameters", [])
        twice = [key for key, count in Counter((p["name"], p["in"]) for p in parameters).items() if count > 1]
        assert not twice, f"{path} documents {twice} more than once"
        documented = {p["name"] for p in parameters if p["in"] == "query"}
        if path in scoped:
            missing = set(SCOPE_PARAMETERS) - REFUSED.get(path, set()) - documented
            assert not missing, f"{path} reads {sorted(missing)} (_scope) but does not document them"
            assert not documented & REFUSED.get(path, set()), f"{path} documents a parameter it refuses"
        if _calls(handler, api._analytics_period):  # the document's routes: start and end, the filters refused
            assert {"start", "end"} <= documented and not documented & (set(SCOPE_PARAMETERS) - {"start", "end"})
        for parameter in parameters:  # a shared parameter is the one definition, everywhere
            if parameter["name"] in api.PARAMETERS:
                assert parameter == api.PARAMETERS[parameter["name"]], (path, parameter["name"])


@pytest.mark.parametrize("path", sorted(REFUSED))
def test_what_a_route_leaves_undocumented_it_refuses(client, path):
    for name in REFUSED[path]:
        answer = client.get(path, params={name: "greeting_tone:casual"})
        assert answer.status_code == 400 and answer.json()["error"].startswith(f"{name}:"), answer.text
