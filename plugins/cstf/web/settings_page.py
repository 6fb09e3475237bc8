"""The trust settings pages: /settings (every trust) and /settings/{vpd} (one trust's settings and their changes).

Read-only, for every reader of the pages (the auditor permission: settings hold no personal data). What they show
is what the esr_inbound runs recorded (cstf.ledger.trust_settings, migration 0013), not the file on disk: the
settings each run used, who changed them and when. Handlers stay thin; settings_view builds what the templates show.
"""
from __future__ import annotations

import logging
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.exc import SQLAlchemyError

from cstf.ledger.trust_settings import settings_versions

from .settings_view import overview, trust_view

log = logging.getLogger(__name__)
UNAVAILABLE = ("The trust settings history is not available yet: the state DB has no trust_settings_versions table "
               "(the next esr_inbound run migrates it).")


def settings_routes(app: FastAPI, db: Callable, render: Callable[..., HTMLResponse]) -> None:
    """Add the settings pages to the app. Register them before the app's catch-all /{slug} page."""

    def versions(vpd: str | None) -> list[dict] | None:
        try:
            return settings_versions(db(), vpd)
        except SQLAlchemyError:
            log.exception("trust settings history could not be read")
            return None

    @app.get("/settings", response_class=HTMLResponse)
    def settings_index(request: Request):
        rows = versions(None)
        if rows is None:
            return render(request, "message.html", 503, title="Trust settings", message=UNAVAILABLE,
                          crumbs=[("Trust settings", None)], settings_page=True)
        return render(request, "settings_index.html", title="Trust settings", trusts=overview(rows),
                      crumbs=[("Trust settings", None)], settings_page=True)

    @app.get("/settings/{vpd}", response_class=HTMLResponse)
    def settings_detail(request: Request, vpd: str):
        base = request.scope.get("root_path", "")
        crumbs = [("Trust settings", f"{base}/settings"), (vpd, None)]
        rows = versions(vpd)
        if rows is None:
            return render(request, "message.html", 503, title="Trust settings", message=UNAVAILABLE, crumbs=crumbs,
                          settings_page=True)
        if not rows:
            return render(request, "message.html", 404, title="Trust not found", crumbs=crumbs, settings_page=True,
                          message=f"No settings recorded for VPD “{vpd}”: a trust's settings are recorded by its "
                                  "first esr_inbound run.")
        view = trust_view(rows)
        return render(request, "settings.html", title=f"Trust settings: {view.vpd}", trust=view, crumbs=crumbs,
                      settings_page=True)
