"""The auditor pages as a FastAPI app: server-rendered HTML, one report per table.

Every table is one page of `cstf.ledger.reports.run` (never the whole report),
filterable with a GET form and downloadable whole as CSV (`reports.write_csv`,
streamed). Handlers stay thin: they read the query, run the reports, and hand
the results to views.table_view and a template.

Sign-in: with require_login (the default) every request goes through `sign_in`,
an object with `async user(request) -> Viewer | str | None` and `login_url(next_url) -> str`
(plugins/cstf_web_plugin.py supplies the one that checks Airflow's session token and asks Airflow's
auth manager what the user's role allows: cstf.web.access). A signed-in user without the read
permission gets a 403 page; without the personal-data permission, names, e-mail addresses and
usernames in plan values are masked on the pages and in the CSV files.
Without a sign_in object the app refuses everyone rather than open up.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Protocol
from html import escape
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError

from cstf.ledger import StateDB, reports

from . import csrf
from . import format as fmt
from .access import FULL, Access, Viewer, mask_row, masked_columns
from .mapping_page import mapping_routes
from .pages import BY_SLUG, LISTS, MAX_PAGE_SIZE, PAGE_SIZE, RUN_SECTIONS, SECTION_SIZE
from .story import run_summary, story
from .streaming import stream_from_writer
from .views import TableView, filter_fields, table_view, unavailable_view

log = logging.getLogger(__name__)
HERE = Path(__file__).parent
# Reports a CSV link may name: those the pages show.
DOWNLOADABLE = frozenset({p.report for p in LISTS} | {name for name, _ in RUN_SECTIONS} | {"person_timeline"})


class SignIn(Protocol):
    async def user(self, request: Request) -> str | None: ...

    def login_url(self, next_url: str) -> str: ...


class _SignInRequired:
    """ASGI middleware: a request without a signed-in user goes to the login page, with next= back."""

    def __init__(self, app, sign_in: SignIn | None):
        self.app = app
        self.sign_in = sign_in

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if self.sign_in is None:
            response: Response = PlainTextResponse("Sign-in is not configured for the CSTF pages.", status_code=403)
            return await response(scope, receive, send)
        user = await self.sign_in.user(request)
        if not user:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(self.sign_in.login_url(here), status_code=307)
            return await response(scope, receive, send)
        viewer = user if isinstance(user, Viewer) else Viewer(str(user), FULL)
        if not viewer.access.read:
            response = HTMLResponse(NO_ACCESS.format(name=escape(viewer.name)), status_code=403)
            return await response(scope, receive, send)
        scope["cstf.user"], scope["cstf.access"] = viewer.name, viewer.access
        return await self.app(scope, receive, send)


NO_ACCESS = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No access</title></head><body>"
             "<h1>No access to the CSTF pages</h1><p>You are signed in to Airflow as {name}, but your Airflow role "
             "does not give access to the CSTF pages. Ask an Airflow administrator for the auditor role "
             "(docs/operations.md, &ldquo;Who sees what&rdquo;).</p></body></html>")


def _access(request: Request) -> Access:
    return request.scope.get("cstf.access", FULL)


def _masking(access: Access):
    """The row transform for what this reader may not see (None: everything shown)."""
    if access.personal_data:
        return None

    def for_columns(columns: list[str]):
        positions = masked_columns(columns)
        return lambda row: mask_row(row, positions)
    return for_columns


class _LazyDB:
    """The state DB, opened on first use so that mounting the app costs nothing."""

    def __init__(self, url: str | None):
        self._url = url
        self._db: StateDB | None = None
        self._lock = threading.Lock()

    def __call__(self) -> StateDB:
        with self._lock:
            if self._db is None:
                self._db = StateDB.from_url(self._url) if self._url else StateDB.from_env()
            return self._db


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["label"] = fmt.label
    return env


def create_app(state_db_url: str | None = None, require_login: bool = True, *,
               sign_in: SignIn | None = None, secret_key: str | None = None) -> FastAPI:
    """The pages over the state DB at state_db_url (None: StateDB.from_env() at first request). secret_key signs
    the forms' CSRF tokens (cstf.web.csrf: CSTF_WEB_SECRET_KEY wins)."""
    app = FastAPI(title="CSTF auditor pages", docs_url=None, redoc_url=None, openapi_url=None)
    if require_login:
        app.add_middleware(_SignInRequired, sign_in=sign_in)
    db = _LazyDB(state_db_url)
    env = _templates()
    css = (HERE / "static" / "cstf.css").read_text(encoding="utf-8")

    def render(request: Request, template: str, status_code: int = 200, **ctx: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        html = env.get_template(template).render(base=base, nav=[p for p in LISTS if p.in_nav],
                                                 user=request.scope.get("cstf.user"), **ctx)
        return HTMLResponse(html, status_code=status_code)

    def run_table(name: str, filters: dict[str, str], *, base: str, limit: int, offset: int,
                  page_url: str, offset_param: str, page_query: dict[str, str],
                  more_href: str | None = None, key: str | None = None,
                  hide: frozenset[str] = frozenset(), access: Access = FULL) -> TableView:
        """One page of a report as a table view; a missing report or a failing query becomes a message."""
        try:
            result = reports.run(db(), name, filters, limit=limit, offset=offset)
        except reports.ReportError:
            return unavailable_view(key or name, fmt.label(name), f"The report “{name}” is not available yet.")
        except SQLAlchemyError as exc:
            log.exception("report %s failed", name)
            return unavailable_view(key or name, fmt.label(name),
                                    f"The report “{name}” could not be read from the state DB ({type(exc).__name__}).")

        def page_href(to: int) -> str:
            return page_url + fmt.query_string({**page_query, offset_param: to or None}) + f"#t-{key or name}"

        csv_href = f"{base}/csv/{name}" + fmt.query_string(filters)
        table = table_view(result, base=base, page_href=page_href, csv_href=csv_href, more_href=more_href,
                           hide=hide, transform=_masking(access))
        table.key = key or name
        return table

    def report_meta(name: str):
        try:
            return reports.get(name)
        except reports.ReportError:
            return None

    # Before the catch-all /{slug} page below, which would otherwise take /mapping-admin.
    mapping_routes(app, db, render, csrf.secret_from(fallback=secret_key))

    @app.get("/static/cstf.css", include_in_schema=False)
    def stylesheet() -> Response:
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        pages = [(p, report_meta(p.report)) for p in LISTS]
        return render(request, "index.html", title="CSTF auditor pages", pages=pages,
                      timeline=report_meta("person_timeline"))

    @app.get("/runs/{run_id:path}", response_class=HTMLResponse)
    def run_detail(request: Request, run_id: str):
        base = request.scope.get("root_path", "")
        q = request.query_params
        url = f"{base}/runs/{quote(run_id, safe='')}"
        summary = run_table("runs", {"run_id": run_id}, access=_access(request), base=base, limit=SECTION_SIZE,
                            offset=0, page_url=url, offset_param="runs_offset", page_query={})
        if summary.unavailable is None and not summary.rows:
            return render(request, "message.html", 404, title="Run not found",
                          message=f"No run with id “{run_id}” in the state DB.", crumbs=[("Runs", f"{base}/runs")])
        page_query = {k: v for k, v in q.items() if k.endswith("_offset")}
        names = [c for c, _ in summary.columns]
        overview = [run_summary(dict(zip(names, [c.text for c in r]))) for r in summary.rows]
        vpds = sorted({r[names.index("vpd")].text for r in summary.rows}) if "vpd" in names else []
        sections = []
        for name, heading in RUN_SECTIONS + (("held", "Held actions"),):
            report = "run_plan" if name == "held" else name
            filters = {"run_id": run_id, **({"held_only": "yes"} if name == "held" else {})}
            param = f"{name}_offset"
            table = run_table(report, filters, access=_access(request), base=base, limit=SECTION_SIZE,
                              offset=fmt.parse_int(q.get(param), 0), page_url=url, offset_param=param,
                              page_query=page_query, key=name, hide=frozenset({"run_id"}),
                              more_href=f"{base}/report/{report}" + fmt.query_string(filters))
            sections.append((heading, table))
        holds = None
        if len(vpds) == 1:
            holds = run_table("holds", {"vpd": vpds[0]}, access=_access(request), base=base, limit=SECTION_SIZE,
                              offset=fmt.parse_int(q.get("holds_offset"), 0), page_url=url,
                              offset_param="holds_offset", page_query=page_query,
                              more_href=f"{base}/holds" + fmt.query_string({"vpd": vpds[0]}))
        return render(request, "run.html", title=f"Run {run_id}", run_id=run_id, summary=summary, overview=overview,
                      sections=sections, holds=holds, vpds=vpds,
                      crumbs=[("Runs", f"{base}/runs"), (run_id, None)])

    def timeline(request: Request, person: str):
        base = request.scope.get("root_path", "")
        q = request.query_params
        meta = report_meta("person_timeline")
        filters = fmt.pick_filters(meta.params if meta else ("person",), {**q, "person": person})
        crumbs = [("People", f"{base}/people")] + ([(person, None)] if person else [])
        table, known, status, sentences = None, False, 200, []
        if meta is None:
            table = unavailable_view("person_timeline", "Person timeline",
                                     "The report “person_timeline” is not available yet.")
            status = 503
        elif person:
            limit = fmt.parse_int(q.get("limit"), PAGE_SIZE, lo=1, hi=MAX_PAGE_SIZE)
            url = f"{base}/people/{quote(person, safe='')}"
            table = run_table("person_timeline", filters, access=_access(request), base=base, limit=limit,
                              offset=fmt.parse_int(q.get("offset"), 0), page_url=url, offset_param="offset",
                              page_query={k: v for k, v in filters.items() if k != "person"}
                              | ({"limit": str(limit)} if limit != PAGE_SIZE else {}))
            if table.unavailable is None and table.rows:
                sentences = story([c for c, _ in table.columns], [[c.text for c in r] for r in table.rows])
            if table.unavailable is None and table.paging.total == 0:
                # No events: someone the inbound has seen (nothing happened yet), or nobody we know.
                known = bool(db().find_person(person, filters.get("vpd")))
                table, status = (None, 200) if known else (table, 404)
        fields = filter_fields(meta.params if meta else ("person",), filters)
        return render(request, "person.html", status, title=f"Person {person}" if person else "Person timeline",
                      person=person, table=table, known=known, fields=fields, crumbs=crumbs, story=sentences)

    @app.get("/people", response_class=HTMLResponse)
    def people(request: Request):
        return timeline(request, (request.query_params.get("person") or "").strip())

    @app.get("/people/{person:path}", response_class=HTMLResponse)
    def person_page(request: Request, person: str):
        return timeline(request, person.strip())

    @app.get("/csv/{name}")
    def download(request: Request, name: str):
        meta = report_meta(name) if name in DOWNLOADABLE else None
        if meta is None:
            return PlainTextResponse(f"No report named {name!r} to download.", status_code=404)
        filters = fmt.pick_filters(meta.params, request.query_params)
        state = db()

        transform = _masking(_access(request))

        def write(out) -> None:
            reports.write_csv(state, name, out, filters, transform=transform)

        return StreamingResponse(
            stream_from_writer(write, what=name), media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{fmt.csv_file_name(name, filters)}"'})

    def listing(request: Request, report: str, *, nav_slug: str | None, fixed: dict[str, str] | None = None):
        base = request.scope.get("root_path", "")
        q = request.query_params
        meta = report_meta(report)
        if meta is None:
            return render(request, "list.html", 503, title=fmt.label(report), slug=nav_slug, fields=[],
                          table=unavailable_view(report, fmt.label(report),
                                                 f"The report “{report}” is not available yet."),
                          crumbs=[(fmt.label(report), None)])
        filters = fmt.pick_filters(meta.params, q)
        limit = fmt.parse_int(q.get("limit"), PAGE_SIZE, lo=1, hi=MAX_PAGE_SIZE)
        url = f"{base}/{nav_slug}" if nav_slug else f"{base}/report/{report}"
        table = run_table(report, filters, access=_access(request), base=base, limit=limit,
                          offset=fmt.parse_int(q.get("offset"), 0),
                          page_url=url, offset_param="offset",
                          page_query=filters | ({"limit": str(limit)} if limit != PAGE_SIZE else {}))
        return render(request, "list.html", title=meta.title, slug=nav_slug, table=table, action=url,
                      fields=filter_fields(meta.params, filters), crumbs=[(meta.title, None)],
                      limit=limit, default_limit=PAGE_SIZE)

    from .settings_page import settings_routes  # the trust settings pages; before the catch-all /{slug} too
    settings_routes(app, db, render)

    @app.get("/report/{name}", response_class=HTMLResponse)
    def any_report(request: Request, name: str):
        # The full, filterable view of a run-detail section.
        if name not in DOWNLOADABLE:
            return render(request, "message.html", 404, title="Not found", message=f"No page for “{name}”.",
                          crumbs=[])
        return listing(request, name, nav_slug=None)

    @app.get("/{slug}", response_class=HTMLResponse)
    def list_page(request: Request, slug: str):
        page = BY_SLUG.get(slug)
        if page is None:
            return render(request, "message.html", 404, title="Not found", message=f"No page “{slug}”.", crumbs=[])
        return listing(request, page.report, nav_slug=slug)

    return app
