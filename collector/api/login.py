"""Login for the dashboard and API (port 8000): HTTP Basic or a bearer API token, two roles.

Off unless [[auth.users]] are configured. Viewers read (GET, HEAD); admins may also change
things. /healthz and /readyz stay open for probes. A browser gets the Basic challenge, so
finance logs in with the browser's own prompt; scripts send `Authorization: Bearer`.
Nothing here logs the Authorization header.
"""

from __future__ import annotations

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp

from breakeven.collector.auth import OPEN_PATHS, AuthConfig, api_user, may


class LoginMiddleware(BaseHTTPMiddleware):
    """401 without a known user, 403 when the user's role does not allow the method."""

    def __init__(self, app: ASGIApp, config: AuthConfig) -> None:
        super().__init__(app)
        self.config = config

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if request.url.path in OPEN_PATHS:
            return await call_next(request)
        user = api_user(self.config, request.headers.get("authorization"))
        if user is None:
            return JSONResponse(
                {"detail": "log in: HTTP Basic (user and password) or Authorization: Bearer <API token>"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="breakeven", charset="UTF-8"'},
            )
        if not may(user, request.method):
            return JSONResponse({"detail": f"user {user.name!r} ({user.role}) may only read"}, status_code=403)
        request.state.user = user
        return await call_next(request)


def require_login(app: ASGIApp, config: AuthConfig) -> ASGIApp:
    """The app behind a login, when users are configured; else the app as it is."""
    return LoginMiddleware(app, config) if config.login_required else app
