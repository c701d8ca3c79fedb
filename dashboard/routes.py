"""Dashboard routes: one context per page, one template, and the page's `.json` twin.

Datasette's shape: `/spend` renders what `/spend.json` returns, so every figure a person
sees is also an API a script can read. `/` renders the overview. Currency and date range
come from the query, else the cookie (breakeven.dashboard.view); pages that were told them set the
cookie. Jinja2 autoescape is on for every template: span values are hostile input.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import sqlalchemy as sa
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.exc import SQLAlchemyError

from breakeven.collector.config.reconcile import ReconcileConfig
from breakeven.collector.price.config import PricingConfig
from breakeven.collector.reports.errors import ReportError
from breakeven.dashboard import export, figures, fmt
from breakeven.dashboard.pages import alerts, breakeven, calls, overview, plans, pools, quality, reconciliation, spend
from breakeven.dashboard.pages.common import NONE_VALUE, key_text
from breakeven.dashboard.view import COOKIE, COOKIE_MAX_AGE, PRESETS, VIEW_PARAMS, View, url, view_of

HERE = Path(__file__).parent
log = logging.getLogger("breakeven.dashboard")
STATIC = HERE / "static"
NAV = (
    ("overview", "/overview", "Overview"),
    ("spend", "/spend", "Spend"),
    ("pools", "/pools", "Pools"),
    ("breakeven", "/breakeven", "Break-even"),
    ("plans", "/plans", "Plans"),
    ("reconciliation", "/reconciliation", "Reconciliation"),
    ("calls", "/calls", "Calls"),
    ("quality", "/quality", "Data quality"),
    ("alerts", "/alerts", "Alerts"),
)


def _static_names() -> dict[str, Path]:
    """Static files by their content-hashed name (dashboard-1a2b3c4d.css): cached forever, safely."""
    out = {}
    for path in sorted(STATIC.glob("*")) if STATIC.is_dir() else []:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
        out[f"{path.stem}-{digest}{path.suffix}"] = path
    return out


def _templates(static: dict[str, Path]) -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HERE / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        fmt=fmt, key_text=key_text, NONE_VALUE=NONE_VALUE, NAV=NAV, PRESETS=PRESETS,
        static={path.name: f"/static/{name}" for name, path in static.items()},
    )  # fmt: skip
    return Jinja2Templates(env=env)


# A page's context from an open connection, the view and the request.
_Build = Callable[[sa.Connection, View, Request], dict[str, Any]]


def add_dashboard(
    app: FastAPI, engine: sa.Engine, pricing: PricingConfig | None = None, *, reconcile: ReconcileConfig | None = None
) -> None:
    """Mount the dashboard pages, their JSON twins and exports on the API app (reconcile: the
    configured bills, which the Reconciliation page and the Overview's bill figure read)."""
    pricing = pricing or PricingConfig()
    static = _static_names()
    templates = _templates(static)
    page = _page_maker(engine, pricing, templates)
    _add_pages(app, pricing, reconcile or ReconcileConfig(), page)
    _add_spend_exports(app, engine, pricing)
    _add_static(app, static)


def _page_maker(
    engine: sa.Engine, pricing: PricingConfig, templates: Jinja2Templates
) -> Callable[[_Build], Callable[..., Response]]:
    """page(build): a handler answering a page's HTML, or its JSON with as_json, from its build."""

    def page(build: _Build) -> Callable[..., Response]:
        def handler(request: Request, as_json: bool = False) -> Response:
            try:
                view = view_of(request, pricing)
                with engine.connect() as conn:
                    ctx = build(conn, view, request)
            except HTTPException as exc:
                if as_json:
                    raise
                return _error(templates, request, exc)
            except ReportError as exc:
                if as_json:  # the API's handler answers 400 with the message, as for every JSON route
                    raise
                return _error(templates, request, HTTPException(400, str(exc)))
            except SQLAlchemyError as exc:
                if as_json:  # the API's handler answers 503 with the reason, as for every JSON route
                    raise
                log.warning("database error on %s: %s", request.url.path, exc.__class__.__name__)
                unavailable = HTTPException(503, f"database unavailable: {exc.__class__.__name__}; try again shortly")
                return _error(templates, request, unavailable, {"Retry-After": "5"})
            return _respond(templates, request, view, ctx, as_json)

        return handler

    return page


def _respond(
    templates: Jinja2Templates, request: Request, view: View, ctx: dict[str, Any], as_json: bool, status: int = 200
) -> Response:
    """The page's context as JSON, or rendered in its template; setting the view cookie when the query named one."""
    if as_json:
        response: Response = JSONResponse(ctx, status_code=status)
    else:
        page_params = {k: v for k, v in request.query_params.items() if k not in VIEW_PARAMS}

        def here(**changes: Any) -> str:
            return url(request.url.path, view, **{**page_params, **changes})

        def link(path: str, **params: Any) -> str:
            return url(path, view, **params)

        path = "/overview" if request.url.path == "/" else request.url.path
        response = templates.TemplateResponse(
            request,
            f"{ctx['page']}.html",
            {
                "c": ctx, "view": view, "charts": figures.for_page(ctx), "here": here, "link": link,
                "path": path, "page_params": page_params, "json_url": url(f"{path}.json", view, **page_params),
            },
            status_code=status,
        )  # fmt: skip
    if view.from_query:
        response.set_cookie(COOKIE, view.cookie_value(), max_age=COOKIE_MAX_AGE, samesite="lax", httponly=True)
    return response


def _error(
    templates: Jinja2Templates, request: Request, exc: HTTPException, headers: dict[str, str] | None = None
) -> Response:
    """The error page for exc, with its status."""
    context = {"status": exc.status_code, "detail": exc.detail}
    return templates.TemplateResponse(request, "error.html", context, status_code=exc.status_code, headers=headers)


def _query(request: Request) -> dict[str, str]:
    """The request's query parameters as a plain dict."""
    return dict(request.query_params)


def _add_pages(
    app: FastAPI, pricing: PricingConfig, reconcile: ReconcileConfig, page: Callable[[_Build], Callable[..., Response]]
) -> None:
    """Mount each page and its .json twin, the home page and a call's detail page."""
    builders: dict[str, _Build] = {
        "overview": lambda conn, view, r: overview.context(conn, pricing, view, datetime.now(UTC), reconcile),
        "spend": lambda conn, view, r: spend.context(conn, pricing, view, _query(r)),
        "pools": lambda conn, view, r: pools.context(conn, pricing, view),
        "breakeven": lambda conn, view, r: breakeven.context(conn, pricing, view),
        "plans": lambda conn, view, r: plans.context(conn, pricing, view, _query(r)),
        "reconciliation": lambda conn, view, r: reconciliation.context(conn, pricing, reconcile, view, _query(r)),
        "calls": lambda conn, view, r: calls.context(conn, pricing, view, _query(r)),
        "calls/repeated": lambda conn, view, r: calls.repeated(conn, pricing, view, _query(r)),
        "quality": lambda conn, view, r: quality.context(conn, pricing, view, datetime.now(UTC)),
        "alerts": lambda conn, view, r: alerts.context(conn, view, r.query_params.get("alert")),
    }
    for name, build in builders.items():
        handler = page(build)
        _register(app, f"/{name}", handler)
    home = page(builders["overview"])

    def index(request: Request) -> Response:
        return home(request)

    app.add_api_route("/", index, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)

    def call_detail(request: Request, trace_id: str, span_id: str) -> Response:
        as_json = span_id.endswith(".json")
        span = span_id.removesuffix(".json")
        return page(lambda conn, view, r: calls.detail(conn, pricing, view, trace_id, span))(request, as_json)

    app.add_api_route("/calls/{trace_id}/{span_id}", call_detail, methods=["GET"], include_in_schema=False)


def _add_spend_exports(app: FastAPI, engine: sa.Engine, pricing: PricingConfig) -> None:
    """Mount the spend page's table as CSV and Parquet downloads."""

    def spend_file(request: Request, kind: str) -> Response:
        view = view_of(request, pricing)
        with engine.connect() as conn:
            ctx = spend.context(conn, pricing, view, _query(request))
        body = export.to_csv(ctx) if kind == "csv" else export.to_parquet(ctx)
        name = f"breakeven-spend-{'-'.join(ctx['group_by'])}-{view.first_day}-{view.last_day}-{view.currency}.{kind}"
        media_type = "text/csv; charset=utf-8" if kind == "csv" else "application/vnd.apache.parquet"
        headers = {"Content-Disposition": f'attachment; filename="{name}"'}
        return Response(body, media_type=media_type, headers=headers)

    def spend_csv(request: Request) -> Response:
        return spend_file(request, "csv")

    def spend_parquet(request: Request) -> Response:
        return spend_file(request, "parquet")

    app.add_api_route("/spend.csv", spend_csv, methods=["GET"], include_in_schema=False)
    app.add_api_route("/spend.parquet", spend_parquet, methods=["GET"], include_in_schema=False)


def _add_static(app: FastAPI, static: dict[str, Path]) -> None:
    """Mount the static files under their content-hashed names, cached forever."""
    media = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}

    def static_file(name: str) -> Response:
        path = static.get(name)
        if path is None:
            raise HTTPException(404, "no such file")
        headers = {"Cache-Control": "public, max-age=31536000, immutable"}
        return Response(
            path.read_bytes(), media_type=media.get(path.suffix, "application/octet-stream"), headers=headers
        )

    app.add_api_route("/static/{name}", static_file, methods=["GET"], include_in_schema=False)


def _register(app: FastAPI, path: str, handler: Callable[..., Response]) -> None:
    def html(request: Request) -> Response:
        return handler(request)

    def as_json(request: Request) -> Response:
        return handler(request, as_json=True)

    app.add_api_route(path, html, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)
    app.add_api_route(f"{path}.json", as_json, methods=["GET"], include_in_schema=False)
