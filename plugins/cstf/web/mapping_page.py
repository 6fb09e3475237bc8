"""Mapping administration pages (issue 15, item 3): a trust's mappings, their versions and changes, the ESR
competences with no confirmed mapping (with suggested Totara certifications), and the forms that change them.

Anyone who may read the CSTF pages reads these; only the administrator permission (cstf.web.access) changes
them, through POST forms that carry a CSRF token (cstf.web.csrf). Every change is validated by
cstf.config.mapping_admin and recorded with who, when, before, after and the reason (cstf.ledger.mapping_store);
it takes effect from the trust's next run.
"""
from __future__ import annotations

import logging
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cstf.config import mapping_admin as admin
from cstf.ledger.mapping_store import MappingStore, StaleMapping, check_fresh
from cstf.reconcile.mapping_reports import certification_catalogue, suggest_certifications

from . import csrf
from .access import FULL

log = logging.getLogger(__name__)
CHANGE_WORDS = {"import": "imported", "propose": "proposed", "confirm": "confirmed", "retire": "retired",
                "new_version": "new version", "end": "ended (new version)"}


def changed_fields(before: dict | None, after: dict | None) -> list[tuple[str, str, str]]:
    """(field, before, after) for each field a change touched; every field of a new mapping."""
    after = after or {}
    if not before:
        return [(k, "", _text(v)) for k, v in after.items() if v not in (None, "")]
    return [(k, _text(before.get(k)), _text(after.get(k))) for k in after if before.get(k) != after.get(k)]


def _text(v) -> str:
    return "open" if v is None else str(v)


def summary(rows: list[dict], unmapped: list[dict]) -> str:
    by = {s: sum(r["status"] == s for r in rows) for s in ("confirmed", "proposed", "retired")}
    text = (f"{by['confirmed']} confirmed mapping(s) count; {by['proposed']} proposed wait for confirmation; "
            f"{by['retired']} retired are kept for history.")
    if unmapped:
        waiting = sum(u["achievements"] for u in unmapped)
        banked = sum(u["evidence_items"] for u in unmapped)
        text += (f" {len(unmapped)} ESR competence(s) in the data have no confirmed mapping: {waiting:,} "
                 f"achievement(s) wait, {banked:,} of them in the evidence bank.")
    return text + " A change takes effect from the trust's next run."


def mapping_routes(app: FastAPI, db, render, secret: bytes) -> None:
    """Register the pages on the app (db: a callable giving the StateDB; render: the app's template renderer)."""

    def access(request: Request):
        return request.scope.get("cstf.access", FULL)

    def user(request: Request) -> str:
        return request.scope.get("cstf.user") or "anonymous"

    def page(request: Request, vpd: str, *, status: int = 200, problems: list[str] | None = None,
             form: dict | None = None, done: str | None = None) -> HTMLResponse:
        base = request.scope.get("root_path", "")
        store = MappingStore(db())
        rows, unmapped = store.rows(vpd), store.unmapped(vpd)
        listed = store.certifications(vpd)
        catalogue = certification_catalogue(listed)
        for u in unmapped:
            u["suggestions"] = suggest_certifications(u["competence_name"] or "", catalogue)
            # Mapped since the last run counted it: say what the next run will do instead of offering a form.
            u["since"] = [r for r in rows if r["competence_id"] == u["competence_id"] and r["status"] in admin.ACTIVE]
        last = {}
        for c in reversed(store.changes(vpd, limit=1000)):
            last[c["mapping_id"]] = c
        changes = [{**c, "word": CHANGE_WORDS.get(c["change"], c["change"]),
                    "fields": changed_fields(c["before"], c["after"])} for c in store.changes(vpd, limit=200)]
        can_change = access(request).admin
        return render(request, "mappings_admin.html", status, title=f"Mappings of VPD {vpd}", slug="mapping-admin",
                      vpd=vpd, rows=rows, unmapped=unmapped, certifications=listed, changes=changes, last=last,
                      summary=summary(rows, unmapped), can_change=can_change, problems=problems or [],
                      form=form or {}, done=done,
                      token=csrf.issue(secret, user(request)) if can_change else None,
                      action=f"{base}/mapping-admin/{quote(vpd, safe='')}",
                      crumbs=[("Mapping administration", f"{base}/mapping-admin"), (f"VPD {vpd}", None)])

    @app.get("/mapping-admin", response_class=HTMLResponse)
    def trusts(request: Request):
        base = request.scope.get("root_path", "")
        vpds = MappingStore(db()).trusts()
        if len(vpds) == 1:
            return RedirectResponse(f"{base}/mapping-admin/{quote(vpds[0], safe='')}", status_code=303)
        return render(request, "mappings_trusts.html", title="Mapping administration", slug="mapping-admin", vpds=vpds,
                      crumbs=[("Mapping administration", None)])

    @app.get("/mapping-admin/{vpd}", response_class=HTMLResponse)
    def trust_page(request: Request, vpd: str):
        q = request.query_params
        what, changed = q.get("what"), q.get("changed") or ""
        done = (f"Mapping #{changed} {CHANGE_WORDS[what]}: it takes effect from the next run."
                if what in CHANGE_WORDS and changed.isdigit() else None)  # built here: no text from the URL is shown
        return page(request, vpd, done=done)

    async def change(request: Request, vpd: str, what: str, mapping_id: int | None = None) -> Response:
        if not access(request).admin:
            return render(request, "message.html", 403, title="Not allowed",
                          message="Changing mappings needs the CSTF administrator permission "
                                  "(docs/operations.md, “Who sees what”).", crumbs=[])
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        try:
            csrf.check_origin(request.headers.get("host"), request.headers.get("origin"),
                              request.headers.get("referer"))
            csrf.check(secret, user(request), form.get(csrf.FIELD))
        except csrf.CsrfError as exc:
            return render(request, "message.html", 403, title="Form refused", message=str(exc), crumbs=[])
        reason = (form.get("reason") or "").strip()
        store = MappingStore(db())
        rows = store.rows(vpd)
        listed = store.certifications(vpd)
        known = {c["idnumber"] for c in listed} if listed else None
        try:
            if not reason:
                raise admin.MappingEditError(["reason: say why (it is recorded with the change)"])
            revision = form.get("revision")
            expect = {mapping_id: int(revision)} if mapping_id is not None and (revision or "").isdigit() else None
            check_fresh(rows, expect)
            if what == "propose":
                ch = admin.propose(rows, form, vpd=vpd, certifications=known)
            elif what == "confirm":
                ch = admin.confirm(rows, mapping_id, certifications=known)
            elif what == "retire":
                ch = admin.retire(rows, mapping_id)
            else:
                ch = admin.new_version(rows, mapping_id, form, certifications=known)
            ids = store.apply(vpd, [ch], by=user(request), reason=reason[:1000], expect_revision=expect)
        except StaleMapping as exc:
            return page(request, vpd, status=409, problems=exc.problems, form=form)
        except admin.MappingEditError as exc:
            return page(request, vpd, status=422, problems=exc.problems, form=form)
        log.info("VPD %s: mapping #%s %s by %s", vpd, ids[-1], what, user(request))
        base = request.scope.get("root_path", "")
        query = urlencode({"changed": ids[-1], "what": what})
        return RedirectResponse(f"{base}/mapping-admin/{quote(vpd, safe='')}?{query}#m-{ids[-1]}", status_code=303)

    @app.post("/mapping-admin/{vpd}/propose")
    async def propose(request: Request, vpd: str):
        return await change(request, vpd, "propose")

    @app.post("/mapping-admin/{vpd}/{mapping_id}/{what}")
    async def change_one(request: Request, vpd: str, mapping_id: int, what: str):
        if what not in ("confirm", "retire", "new-version"):
            return Response(status_code=404)
        return await change(request, vpd, what.replace("-", "_"), mapping_id)
