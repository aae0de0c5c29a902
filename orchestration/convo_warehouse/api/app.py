"""The read API: metrics, funnels and experiments as JSON, from the published snapshot.

Starlette on uvicorn, like the collector. Every request reads the snapshot
the ``current`` pointer names when it arrives (a new snapshot is served from
the next request on; a request never mixes two), read-only, never the
warehouse a run writes. Numbers come from the same functions the dashboard
and the CLI use (``lib/metric_views.py``, ``lib/funnel_views.py``,
``commands/experiments.read_experiments``): rates are fractions 0..1, counts
integers. With tokens configured every route but ``/api/health`` needs
``Authorization: Bearer <token>``. Like the collector, it serves only its
configured ``Host`` names (loopback ones by default) and refuses requests a
browser marks as coming from another site, and it runs behind the same
per-client limits (``lib/server_limits.py``). ``/api/openapi.json`` describes it all
(OpenAPI 3, generated from the route docstrings by Starlette's
SchemaGenerator; the query parameters several routes share are defined once,
in ``PARAMETERS``).

Beside these, ``/api/analytics/dashboard`` and ``/api/analytics/funnel``
answer in the shapes of the chat-analytics document the warehouse replaces
(``lib/chat_analytics.py``): the same snapshot, checks and limits, the body
exactly the document's, the snapshot's version in a header.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import threading
from collections import OrderedDict
from pathlib import Path

import duckdb
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from convo_warehouse.commands._reading import jsonable
from convo_warehouse.lib import access, chat_analytics, funnel_views, metric_views, serving, timing_views
from convo_warehouse.lib.scope import Scope, default_period

TOKENS_ENV = "CONVO_API_TOKENS"
OPEN_PATHS = ("/api/health",)
CONNECTIONS_KEPT = 3  # snapshot versions with an open connection (readers of an old one finish on it)
# The snapshot a document-shaped answer (/api/analytics/*) came from: its body has no room for it.
SNAPSHOT_HEADER = "X-Convo-Snapshot"
FILTERS = ("channel", "agent", "environment", "exclude_development", "variant")
MAX_ABANDON_TURNS = 1000


def _query(name: str, schema: dict, description: str, **more) -> dict:
    return {"name": name, "in": "query", "schema": schema, **more, "description": description}


def _one_of(name: str, column: str) -> dict:
    """A repeatable attribute filter (channel=web&channel=sms)."""
    return _query(name, {"type": "array", "items": {"type": "string"}},
                  f"Only the conversations whose {column} is one of the values given (repeat the parameter for "
                  f"several); a conversation without one counts as `unknown`.", style="form", explode=True)


# The query parameters several routes share (what _scope reads: the period's days, then the filters),
# each defined once, its description true on every route that takes it. A route's docstring names
# one as `- $ref: "#/components/parameters/<name>"` in its place among the route's own parameters;
# the schema served has the definition written out there (_Schemas).
PARAMETERS = {parameter["name"]: parameter for parameter in (
    _query("start", {"type": "string", "format": "date"},
           "First conversation day (the UTC date of a conversation's first event), inclusive. Without start and "
           "end the period defaults to the last 28 complete days, up to the latest complete day (the newest "
           "conversation day before the day of the newest event); with end alone it runs from the first day of "
           "the data. Not a YYYY-MM-DD day, or after end: 400."),
    _query("end", {"type": "string", "format": "date"},
           "Last conversation day, inclusive. Without start and end: the latest complete day (see start); with "
           "start alone, the last day of the data. Not a YYYY-MM-DD day, or before start: 400."),
    _query("period", {"type": "string", "enum": ["all"]},
           "all: without start and end, the whole history instead of the last 28 complete days. Ignored when "
           "start or end is given; any other value is ignored."),
    _one_of("channel", "channel"),
    _one_of("agent", "agent_id"),
    _one_of("environment", "environment"),
    _query("exclude_development", {"type": "boolean"},
           "true (or 1): leave out development traffic, the conversations whose environment is development (one "
           "without an environment is kept); false (or 0), the default: keep it. Anything else: 400."),
    _query("variant", {"type": "string"},
           "<test_name>:<variant>: only the conversations exposed to this variant of this A/B test and to no "
           "other of its variants (a conversation that saw several is contaminated and in no variant). Without "
           "the colon, the test name or the variant: 400."),
)}
# Names for the runs of them most routes take whole: `$ref: "#/components/parameters/days"` is start,
# end and period; `.../filters` the five filters (a route refusing one names the others one by one).
PARAMETER_GROUPS = {"days": ("start", "end", "period"), "filters": FILTERS}
SHARED_PARAMETER = "#/components/parameters/"


def _shared(name: str) -> list[dict]:
    """The definitions a ``$ref`` name stands for: a group's parameters, or the one parameter."""
    return [copy.deepcopy(PARAMETERS[each]) for each in PARAMETER_GROUPS.get(name, (name,))]


class _Schemas(SchemaGenerator):
    """Starlette's schema generator, with each shared parameter a route's docstring names
    (``$ref``) written out from PARAMETERS: the schema served lists every parameter in its route."""

    def parse_docstring(self, func_or_method) -> dict:
        parsed = super().parse_docstring(func_or_method)
        if "parameters" in parsed:
            parsed["parameters"] = [
                written
                for parameter in parsed["parameters"]
                for written in (
                    _shared(parameter["$ref"].removeprefix(SHARED_PARAMETER)) if "$ref" in parameter else [parameter]
                )
            ]
        return parsed


SCHEMAS = _Schemas(
    {
        "openapi": "3.0.3",
        "info": {
            "title": "convo-warehouse read API",
            "version": "1",
            "description": (
                "Metrics, funnels and experiments of the published snapshot. Rates are fractions 0..1, counts "
                "integers, days UTC conversation days (YYYY-MM-DD, inclusive). The routes that count a period's "
                "conversations take its days (start, end, period) and filters (channel, agent, environment, "
                "exclude_development, variant); a conversation counts when it passes every filter given. "
                "/api/analytics/dashboard and /api/analytics/funnel answer in the chat-analytics document's "
                "shapes (start and end only; dropoffRate in percent). Send 'Authorization: Bearer <token>' when "
                "the server has tokens (CONVO_API_TOKENS)."
            ),
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
)


@dataclasses.dataclass(frozen=True)
class ApiConfig:
    serving_dir: Path
    tokens: tuple[str, ...] = ()
    # Host header values served ("*": any) and browser origins allowed, as the collector
    # (lib/access.py): a DNS-rebinding page or another site's script reads nothing
    allowed_hosts: tuple[str, ...] = access.LOOPBACK_HOSTS
    allowed_origins: tuple[str, ...] = ()


class _Problem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Snapshots:
    """One read-only connection per snapshot version (its files never change), newest few kept."""

    def __init__(self, serving_dir: Path) -> None:
        self.serving_dir = serving_dir
        self._lock = threading.Lock()
        self._connections: OrderedDict[str, duckdb.DuckDBPyConnection] = OrderedDict()

    def cursor(self) -> tuple[duckdb.DuckDBPyConnection, serving.Snapshot]:
        try:
            snapshot = serving.current_snapshot(self.serving_dir)
        except serving.SnapshotNotFoundError as error:
            raise _Problem(503, str(error)) from None
        with self._lock:
            con = self._connections.get(snapshot.version)
            if con is None:
                con = snapshot.connect()
                self._connections[snapshot.version] = con
                while len(self._connections) > CONNECTIONS_KEPT:
                    _, oldest = self._connections.popitem(last=False)
                    oldest.close()
            self._connections.move_to_end(snapshot.version)
            cursor = con.cursor()  # a cursor per request: DuckDB connections are not shared across threads
        cursor.execute("set TimeZone = 'UTC'")
        return cursor, snapshot

    def close(self) -> None:
        with self._lock:
            for con in self._connections.values():
                con.close()
            self._connections.clear()


def _date(request: Request, name: str) -> dt.date | None:
    value = request.query_params.get(name)
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _Problem(400, f"{name}={value!r} is not a day: use YYYY-MM-DD") from None


def _scope(request: Request, con) -> Scope:
    """The request's period and filters; without start and end, the last 28 complete days."""
    params = request.query_params
    start, end = _date(request, "start"), _date(request, "end")
    if start is None and end is None and params.get("period") != "all":
        period = default_period(con)
        if period is not None:
            start, end = period
    variant = params.get("variant")
    experiment = None
    if variant:
        test_name, separator, value = variant.partition(":")
        if not separator or not test_name or not value:
            raise _Problem(400, f"variant={variant!r}: use <test_name>:<variant>")
        experiment = (test_name, value)
    flag = params.get("exclude_development", "false").lower()
    if flag not in ("true", "false", "1", "0"):
        raise _Problem(400, f"exclude_development={flag!r}: use true or false")
    try:
        return Scope(
            start=start, end=end,
            channels=tuple(params.getlist("channel")),
            agents=tuple(params.getlist("agent")),
            environments=tuple(params.getlist("environment")),
            include_development=flag in ("false", "0"),
            experiment=experiment,
        )
    except ValueError as error:
        raise _Problem(400, str(error)) from None


def _analytics_period(request: Request, con) -> chat_analytics.Period:
    """The period of a chat-analytics route (start, end); the filters of the other routes are refused,
    not ignored: the document's routes count every conversation of the period."""
    given = sorted({name for name in FILTERS if name in request.query_params})
    if given:
        raise _Problem(400, f"{', '.join(given)}: the chat-analytics routes take only start and end (every "
                            "conversation of the period); /api/metrics/<name> and /api/funnels/<name> filter")
    period = chat_analytics.period_of(con, _date(request, "start"), _date(request, "end"), default_period(con))
    if period is None:
        raise _Problem(503, "the snapshot holds no conversation yet")
    return period


def _limit(request: Request, default: int) -> int:
    value = request.query_params.get("limit")
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise _Problem(400, f"limit={value!r} is not a whole number") from None
    if not 1 <= limit <= MAX_ABANDON_TURNS:
        raise _Problem(400, f"limit={limit}: use 1..{MAX_ABANDON_TURNS}")
    return limit


def _scope_json(scope: Scope) -> dict:
    return {
        "start": scope.start, "end": scope.end, "channels": list(scope.channels), "agents": list(scope.agents),
        "environments": list(scope.environments), "include_development": scope.include_development,
        "variant": ":".join(scope.experiment) if scope.experiment else None, "description": scope.describe(),
    }


def _counts(record: dict, metric: metric_views.Metric) -> dict:
    """Numerator and denominator of counts and proportions are counts of conversations: integers."""
    if metric.kind == "count" or metric.is_proportion:
        for key in ("numerator", "denominator"):
            if record.get(key) is not None:
                record[key] = int(round(record[key]))
        if metric.kind == "count" and record.get("value") is not None:
            record["value"] = int(round(record["value"]))
    return record


def _snapshot_json(snapshot: serving.Snapshot) -> dict:
    return {"version": snapshot.version, "published_at": snapshot.manifest.get("published_at"),
            "data_up_to": snapshot.manifest.get("newest_event_at")}


def create_app(config: ApiConfig) -> Starlette:
    snapshots = _Snapshots(config.serving_dir)

    def refused(request: Request) -> JSONResponse | None:
        """401 unless the request may pass: no tokens configured, an open path, or a known token."""
        if not config.tokens or request.url.path in OPEN_PATHS:
            return None
        if access.matches_any(access.bearer_token(request.headers.get("authorization")), config.tokens):
            return None
        return JSONResponse(
            {"error": f"missing or wrong bearer token: send 'Authorization: Bearer <token>' with a token listed "
                      f"in {TOKENS_ENV}"},
            status_code=401, headers={"WWW-Authenticate": "Bearer"},
        )

    def respond(handler, bare: bool = False):
        """The route: checks, a snapshot cursor, errors as JSON. The answer is the handler's payload
        with ``snapshot`` beside it, or (``bare``, the document's shapes) the payload as it is, the
        snapshot's version in the ``X-Convo-Snapshot`` header."""

        def endpoint(request: Request) -> JSONResponse:
            refusal = refused(request)
            if refusal is not None:
                return refusal
            cross_site = access.cross_site_refusal(request.headers, config.allowed_origins)
            if cross_site is not None:
                return JSONResponse({"error": cross_site}, status_code=403)
            try:
                con, snapshot = snapshots.cursor()
                try:
                    payload = handler(request, con)
                finally:
                    con.close()
            except _Problem as problem:
                return JSONResponse({"error": problem.message}, status_code=problem.status)
            except (metric_views.UnknownMetricError, funnel_views.UnknownFunnelError) as error:
                return JSONResponse({"error": str(error.args[0])}, status_code=404)
            except ValueError as error:
                return JSONResponse({"error": str(error)}, status_code=400)
            if bare:
                return JSONResponse(jsonable(payload), headers={SNAPSHOT_HEADER: snapshot.version})
            return JSONResponse(jsonable({"snapshot": _snapshot_json(snapshot), **payload}))

        endpoint.__doc__ = handler.__doc__
        endpoint.__name__ = handler.__name__
        return endpoint

    def health(request: Request, con) -> dict:
        """
        responses:
          200:
            description: The API is up; the snapshot it serves (no token needed).
          503:
            description: No snapshot has been published yet.
        """
        return {"status": "ok"}

    def metrics_list(request: Request, con) -> dict:
        """
        responses:
          200:
            description: Every metric (name, kind, unit, description, whether it is a 0..1 proportion).
        """
        return {"metrics": [dataclasses.asdict(metric) for metric in metric_views.glossary(con).values()]}

    def metric(request: Request, con) -> dict:
        """
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}, description: "A metric_name of /api/metrics, e.g. completion_rate."}
          - $ref: "#/components/parameters/days"
          - {name: segment_type, in: query, schema: {type: string}, description: "all (default), channel, agent_id, device, source, language, environment or experiment:<test_name>."}
          - {name: segment_value, in: query, schema: {type: string}, description: "Only this value of segment_type."}
          - {name: grain, in: query, schema: {type: string, enum: [day, hour]}, description: "The series' period (default day)."}
          - $ref: "#/components/parameters/filters"
        responses:
          200:
            description: >
              The metric over the whole period per segment value (totals) and per day (or hour) and
              segment value (series), as metrics_daily rows: numerator, denominator, value; no row where
              a ratio's denominator is 0.
          404:
            description: Unknown metric.
        """
        name = request.path_params["name"]
        scope = _scope(request, con)
        segment_type = request.query_params.get("segment_type", "all")
        segment_value = request.query_params.get("segment_value")
        known = metric_views.glossary(con)
        if name not in known:
            raise metric_views.UnknownMetricError(f"unknown metric {name!r}; known metrics: {', '.join(known)}")
        info = known[name]
        series = metric_views.metric_series(con, name, scope, segment_type, request.query_params.get("grain", "day"))
        if segment_value is not None:
            series = series[series["segment_value"] == segment_value]
        totals = metric_views.metric_series(con, name, scope, segment_type, "total")
        if segment_value is not None:
            totals = totals[totals["segment_value"] == segment_value]
        return {
            "metric": dataclasses.asdict(info),
            "scope": _scope_json(scope),
            "segment_type": segment_type,
            "segment_value": segment_value,
            "totals": [_counts(record, info) for record in totals.drop(columns="period").to_dict("records")],
            "series": [_counts(record, info) for record in series.to_dict("records")],
        }

    def segment_comparison(request: Request, con) -> dict:
        """
        parameters:
          - {name: metric, in: query, schema: {type: string}, description: "Only this proportion metric (default: every one)."}
          - {name: segment_type, in: query, schema: {type: string}, description: "Only this segment type (default: every one)."}
        responses:
          200:
            description: >
              marts.segment_comparison (contract v1.3): every proportion metric's segment values against
              the rest of their segment type over the mart's period (the whole history by default; no
              filters): sample_size, rate, Wilson ci_low / ci_high, rest_rate, difference_from_rest,
              p_value (adjusted within metric and segment type, Benjamini-Hochberg), is_significant, is_best.
        """
        params = request.query_params
        rows = metric_views.segment_comparison(con, params.get("metric"), params.get("segment_type"))
        records = rows.to_dict("records")
        for record in records:  # counts of conversations are integers
            record["numerator"], record["sample_size"] = int(record["numerator"]), int(record["sample_size"])
        return {"rows": records}

    def funnels_list(request: Request, con) -> dict:
        """
        responses:
          200:
            description: Every funnel with its stages and the reading it is shown in (counting).
        """
        rows = con.execute(
            "select funnel_name, counting, list(stage order by stage_order) from marts.funnel_summary "
            "group by funnel_name, counting order by funnel_name"
        ).fetchall()
        return {"funnels": [{"funnel_name": name, "counting": counting, "stages": stages}
                            for name, counting, stages in rows]}

    def funnel(request: Request, con) -> dict:
        """
        parameters:
          - {name: name, in: path, required: true, schema: {type: string}, description: "A funnel_name of /api/funnels."}
          - {name: reading, in: query, schema: {type: string, enum: [any_order, in_order]}, description: "Default: the funnel's counting."}
          - $ref: "#/components/parameters/days"
          - $ref: "#/components/parameters/filters"
        responses:
          200:
            description: >
              The funnel's stages in one reading: count, share_of_entered, from_previous, drop_off,
              drop_off_rate (never above 1, never negative), both raw counts (reached, reached_in_order),
              the median seconds from the previous stage and from the funnel's first stage (on the support
              funnel's resolved stage: the median time to resolution); entered is the population.
          404:
            description: Unknown funnel.
        """
        scope = _scope(request, con)
        view = funnel_views.funnel_view(con, request.path_params["name"], scope,
                                        request.query_params.get("reading"))
        return {"scope": _scope_json(scope), "funnel": view.as_dict()}

    def experiments(request: Request, con) -> dict:
        """
        responses:
          200:
            description: >
              Every A/B test of the experiments seed (whole history): results per variant (sessions,
              conversions, rate, lift, CI, p-value, SRM), metrics and health rows as the marts hold them.
        """
        from convo_warehouse.commands.experiments import read_experiments

        return {"experiments": _experiments(read_experiments, con, None)}

    def experiment(request: Request, con) -> dict:
        """
        parameters:
          - {name: test_name, in: path, required: true, schema: {type: string}}
        responses:
          200:
            description: One test's results, metrics and health.
          404:
            description: Not a test of the experiments seed.
        """
        from convo_warehouse.commands.experiments import read_experiments

        test_name = request.path_params["test_name"]
        tests = _experiments(read_experiments, con, test_name)
        if not tests:
            raise _Problem(404, f"no test named {test_name!r} in the experiments seed")
        return {"experiment": tests[0]}

    def analytics_dashboard(request: Request, con) -> dict:
        """
        parameters:
          - $ref: "#/components/parameters/start"
          - $ref: "#/components/parameters/end"
        responses:
          200:
            description: >
              The chat-analytics dashboard as its document writes it, over the conversations whose day
              (UTC date of the first event) is in the period. metrics holds exactly total_sessions,
              avg_session_duration_seconds (first to last event), avg_messages_per_session (user
              messages), escalation_rate (sessions with a handoff / sessions), resolution_rate
              (1 - escalation_rate: the document's meaning, not the contract's), fallback_rate (fallbacks
              / user messages), conversion_rate (converted sessions / sessions), avg_first_response_ms,
              avg_satisfaction_score (mean of the numeric 1-5 ratings; positive / negative are left out).
              funnel is /api/analytics/funnel's answer for the support funnel; top_fallback_topics the
              ten most frequent fallback topics (topic, count of fallbacks, conversations); ab_tests the
              experiments seed's tests active in the period (start_date..end_date meets it; no date:
              always) with each variant's sessions, conversions and conversion_rate in the period.
              Rates are fractions 0..1 (dropoffRate: percent). The snapshot's version is in the
              X-Convo-Snapshot header. No other filter: channel, agent, ... are refused (400).
            content:
              application/json:
                schema:
                  type: object
                  required: [metrics, funnel, top_fallback_topics, ab_tests, period]
                  properties:
                    metrics:
                      type: object
                      properties:
                        total_sessions: {type: integer}
                        avg_session_duration_seconds: {type: number, nullable: true}
                        avg_messages_per_session: {type: number, nullable: true}
                        escalation_rate: {type: number, nullable: true}
                        resolution_rate: {type: number, nullable: true}
                        fallback_rate: {type: number, nullable: true}
                        conversion_rate: {type: number, nullable: true}
                        avg_first_response_ms: {type: number, nullable: true}
                        avg_satisfaction_score: {type: number, nullable: true}
                    funnel:
                      type: array
                      items: {type: object, properties: {name: {type: string}, sessionCount: {type: integer}, dropoffRate: {type: number, nullable: true}}}
                    top_fallback_topics:
                      type: array
                      items: {type: object, properties: {topic: {type: string}, count: {type: integer}, conversations: {type: integer}}}
                    ab_tests:
                      type: array
                      items:
                        type: object
                        properties:
                          test_name: {type: string}
                          start_date: {type: string, format: date, nullable: true}
                          end_date: {type: string, format: date, nullable: true}
                          variants:
                            type: array
                            items: {type: object, properties: {variant: {type: string}, is_control: {type: boolean}, sessions: {type: integer}, conversions: {type: integer}, conversion_rate: {type: number, nullable: true}}}
                    period:
                      type: object
                      properties: {start: {type: string, format: date}, end: {type: string, format: date}}
          400:
            description: A bad day, a period that ends before it starts, or a filter parameter.
        """
        return chat_analytics.dashboard(con, _analytics_period(request, con))

    def analytics_funnel(request: Request, con) -> list:
        """
        parameters:
          - $ref: "#/components/parameters/start"
          - $ref: "#/components/parameters/end"
          - {name: funnel, in: query, schema: {type: string, default: support}, description: "A funnel_name of /api/funnels."}
        responses:
          200:
            description: >
              The funnel's stages as the document writes them, in the funnel's declared reading:
              name, sessionCount (the stage's count, as /api/funnels/<name>), dropoffRate (percent, one
              decimal, of the previous stage's conversations that did not go on to this stage; 0.0 for
              the first stage, which has no previous step; null when the previous stage has none). The
              snapshot's version is in the X-Convo-Snapshot header. No other filter: channel, agent, ...
              are refused (400), as on /api/analytics/dashboard.
            content:
              application/json:
                schema:
                  type: array
                  items: {type: object, properties: {name: {type: string}, sessionCount: {type: integer}, dropoffRate: {type: number, nullable: true}}}
          404:
            description: Unknown funnel.
        """
        funnel = request.query_params.get("funnel") or chat_analytics.DEFAULT_FUNNEL
        return chat_analytics.funnel_steps(con, _analytics_period(request, con), funnel)

    def abandon_turns(request: Request, con) -> dict:
        """
        parameters:
          - $ref: "#/components/parameters/days"
          - {name: limit, in: query, schema: {type: integer, default: 10, minimum: 1, maximum: 1000}, description: "How many turns."}
          - $ref: "#/components/parameters/channel"
          - $ref: "#/components/parameters/agent"
          - $ref: "#/components/parameters/environment"
          - $ref: "#/components/parameters/exclude_development"
        responses:
          200:
            description: >
              The user turns at which the period's conversations were abandoned, most abandoned first
              (marts.abandon_turn_daily summed over the period): turn, conversations, share (of the
              period's abandoned conversations with a turn, `abandoned`). variant is refused (400): the
              mart has no variant.
        """
        if "variant" in request.query_params:
            raise _Problem(400, "variant: abandon turns are counted per day, channel, agent and environment, "
                                "not per experiment variant")
        scope = _scope(request, con)
        limit = _limit(request, funnel_views.DEFAULT_ABANDON_TURNS)
        return {"scope": _scope_json(scope), **funnel_views.abandon_turns(con, scope, limit).as_dict()}

    def timing(request: Request, con) -> dict:
        """
        parameters:
          - $ref: "#/components/parameters/days"
          - $ref: "#/components/parameters/channel"
          - $ref: "#/components/parameters/agent"
          - $ref: "#/components/parameters/environment"
          - $ref: "#/components/parameters/exclude_development"
        responses:
          200:
            description: >
              Every weekday (ISO, 1 = Monday) and UTC hour of the first event with a conversation of the
              period (marts.timing_daily summed): the counts and interaction_rate (initialized and engaged
              / initialized), engagement_rate (started and engaged / started), completion_rate (started
              and completed / started), each a summed numerator over a summed denominator (null where it
              is 0). variant is refused (400).
        """
        if "variant" in request.query_params:
            raise _Problem(400, "variant: timing is counted per day, hour, channel, agent and environment, "
                                "not per experiment variant")
        scope = _scope(request, con)
        return {"scope": _scope_json(scope),
                "cells": [cell.as_dict() for cell in timing_views.timing_cells(con, scope)]}
    # ---- the language models compared (issue 48, item 8: lib/model_views.py, the dashboard's
    # Models page) ------------------------------------------------------------------------------
    def models_compared(request: Request, con) -> dict:
        """
        parameters:
          - $ref: "#/components/parameters/days"
          - $ref: "#/components/parameters/filters"
          - {name: min_started, in: query, schema: {type: integer, minimum: 1}, description: "Started conversations a model needs to be compared (default 30)."}
        responses:
          200:
            description: >
              One row per model that wrote agent messages in the scope (a conversation counts for each
              of its models): completion and handoff rates with 95% Wilson intervals, mean satisfaction
              with its 95% t interval, and for each measure the best model (is_best) and every other
              comparable model's difference from it with its 95% interval, p-value (two-proportion
              z-test; Welch's t-test for satisfaction), Holm-adjusted p-value and worse_than_best;
              cost_usd, cost_per_conversation (conversations whose messages are all priced),
              unpriced_agent_messages (no price in seeds/model_prices.csv at their time, never
              guessed), tokens and latency.
          400:
            description: A malformed parameter.
        """
        from convo_warehouse.lib import model_views

        scope = _scope(request, con)
        raw = request.query_params.get("min_started", str(model_views.MIN_STARTED))
        if not raw.isdigit() or int(raw) < 1:
            raise _Problem(400, f"min_started={raw!r}: use a whole number of at least 1")
        if not _has_relation(con, "marts", "fct_conversation_models"):
            raise _Problem(503, "this snapshot has no marts.fct_conversation_models: run `convo-warehouse run`")
        frame = model_views.model_comparison(con, scope, int(raw))
        return {"scope": _scope_json(scope), "min_started": int(raw), "models": frame.to_dict("records")}

    def openapi(request: Request) -> JSONResponse:
        cross_site = access.cross_site_refusal(request.headers, config.allowed_origins)
        if cross_site is not None:
            return JSONResponse({"error": cross_site}, status_code=403)
        return refused(request) or JSONResponse(SCHEMAS.get_schema(routes=app.routes))

    routes = [
        Route("/api/health", respond(health), methods=["GET"]),
        Route("/api/metrics", respond(metrics_list), methods=["GET"]),
        Route("/api/metrics/{name}", respond(metric), methods=["GET"]),
        Route("/api/segment-comparison", respond(segment_comparison), methods=["GET"]),
        Route("/api/funnels", respond(funnels_list), methods=["GET"]),
        Route("/api/funnels/{name}", respond(funnel), methods=["GET"]),
        Route("/api/experiments", respond(experiments), methods=["GET"]),
        Route("/api/experiments/{test_name}", respond(experiment), methods=["GET"]),
        Route("/api/abandon-turns", respond(abandon_turns), methods=["GET"]),
        Route("/api/timing", respond(timing), methods=["GET"]),
        Route("/api/analytics/dashboard", respond(analytics_dashboard, bare=True), methods=["GET"]),
        Route("/api/analytics/funnel", respond(analytics_funnel, bare=True), methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False),
    ]
    # the language models compared (issue 48, item 8)
    routes.append(Route("/api/models", respond(models_compared), methods=["GET"]))
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        snapshots.close()

    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts),
                                           www_redirect=False)])
    return app


def _has_relation(con, schema: str, name: str) -> bool:
    """Whether the snapshot has this table or view (an older snapshot may lack a newer mart)."""
    return con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?", [schema, name]
    ).fetchone()[0] > 0


def _experiments(read_experiments, con, test_name: str | None) -> list[dict]:
    import click

    try:
        return read_experiments(con, test_name)
    except click.ClickException as error:  # the marts are missing from this snapshot
        raise _Problem(503, error.message) from None
