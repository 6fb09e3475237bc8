"""Airflow plugin: the CSTF auditor pages (cstf.web) inside the Airflow API server.

- mounted at /cstf in the API server (`fastapi_apps`), with a "CSTF" entry in the
  Airflow navigation that shows the pages inside the UI (`external_views`);
- only users signed in to Airflow reach them: the request's Airflow session token
  (the `_token` cookie the UI sets at login, or an `Authorization: Bearer` token) is
  validated by Airflow's own auth manager; anyone else goes to Airflow's login page
  with next= back to the page they asked for;
- what a signed-in user may see is the auth manager's answer too (cstf.web.access: the
  auditor, personal-data and administrator permissions; with SimpleAuthManager, the role).

Nothing heavy happens at import: Airflow imports plugins in every component, so the
pages (and the state DB) are only built on the first request to /cstf.
The state DB is the one the DAGs use: CSTF_STATE_DB_URL, else $CSTF_WORKDIR/state.db.
"""
from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/cstf"


class AirflowSignIn:
    """The signed-in Airflow user of a request, checked by the API server's auth manager."""

    @staticmethod
    def _token(request) -> str | None:
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip() or None
        return request.cookies.get(COOKIE_NAME_JWT_TOKEN) or None

    async def user(self, request):
        """The signed-in user and what their Airflow role gives them on these pages (cstf.web.access), or None."""
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from jwt import InvalidTokenError

        from cstf.web.access import Viewer

        token = self._token(request)
        if not token:
            return None
        manager = get_auth_manager()
        try:
            user = await manager.get_user_from_token(token)
        except InvalidTokenError:  # bad signature, expired, revoked: sign in again
            return None
        if not manager.is_authorized_view(access_view=AccessView.WEBSITE, user=user):
            return None
        return Viewer(user.get_name(), access_of(manager, user))

    def login_url(self, next_url: str) -> str:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=next_url)


def access_of(manager, user):
    """What the auth manager lets this user do on the CSTF pages. SimpleAuthManager answers every custom resource
    alike, so there the user's role decides (thresholds in cstf.web.access); any other auth manager is asked about
    the CSTF custom resources, which its administrators grant to roles (FAB: Security > Actions / Resources)."""
    from cstf.web import access

    if type(manager).__name__ == "SimpleAuthManager":
        return access.simple_role_access(getattr(user, "role", None), access.thresholds())

    def allowed(method: str, resource: str) -> bool:
        try:
            return bool(manager.is_authorized_custom_view(method=method, resource_name=resource, user=user))
        except NotImplementedError:
            return False
    read = allowed("GET", access.RESOURCE_AUDIT)
    return access.Access(read=read, personal_data=read and allowed("GET", access.RESOURCE_PERSONAL_DATA),
                         admin=read and allowed("PUT", access.RESOURCE_ADMIN))


def _airflow_secret() -> str | None:
    """Airflow's own API secret signs the CSTF forms' CSRF tokens, so every API server worker accepts them."""
    from airflow.configuration import conf

    return conf.get("api", "secret_key", fallback=None) or None


class _PagesOnFirstRequest:
    """An ASGI app that builds the real one when the first request arrives."""

    def __init__(self):
        self._app = None

    async def __call__(self, scope, receive, send):
        if self._app is None:
            from cstf.web import create_app

            self._app = create_app(require_login=True, sign_in=AirflowSignIn(), secret_key=_airflow_secret())
        await self._app(scope, receive, send)


class CstfWebPlugin(AirflowPlugin):
    name = "cstf_web"
    fastapi_apps = [{"app": _PagesOnFirstRequest(), "url_prefix": URL_PREFIX, "name": "CSTF auditor pages"}]
    external_views = [{
        "name": "CSTF",
        "href": URL_PREFIX + "/",
        "url_route": "cstf",
        "destination": "nav",
        "nav_top_level": True,
        "category": "CSTF",
    }]
