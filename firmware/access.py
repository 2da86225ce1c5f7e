"""Who may use the local API and the web page.

Without ``api.token`` (the API on loopback) every local process may. With it,
every route asks for the token, in one of three ways:

- ``Authorization: Bearer <token>`` (scripts, ``chargepoint status``, Prometheus);
- the session cookie, which a browser gets from the login form (``POST
  /login``) or from one request carrying ``?token=<token>``: the answer sets the
  cookie and redirects to the same address without the token, so it stays out
  of the address bar and the history;
- nothing else: a browser asking for a page gets the login form (401), anything
  else a JSON error (401).

The cookie holds an HMAC of the token, not the token: HttpOnly (scripts on the
page cannot read it), SameSite=Strict, path ``/``, for the browser session.
Every comparison is constant-time (``hmac.compare_digest``).

Whatever the token, a request that changes something (not GET/HEAD/OPTIONS)
and comes from a page of another origin (its ``Origin`` header names another
scheme, host or port) is refused: SameSite does not tell ports apart, and a
station on loopback has no token at all.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from importlib import resources
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger("firmware.access")

COOKIE = "chargepoint_session"
LOGIN_PATH = "/login"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TOKEN_CHARS = 256


def session_value(token: str) -> str:
    """What the cookie holds: proof of the token that does not give the token away."""
    return hmac.new(token.encode(), b"chargepoint web session", hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _wants_html(request: web.Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("Accept", "")


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not sent by a browser page (curl, scripts, same-origin GET)
    return origin == f"{request.scheme}://{request.host}"


def login_page(message: str = "", status: int = 401) -> web.Response:
    text = resources.files("firmware.web").joinpath("login.html").read_text()
    return web.Response(
        text=text.replace("{{message}}", message),
        status=status,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                "frame-ancestors 'none'"
            ),
        },
    )


def _refused(request: web.Request) -> web.Response:
    if _wants_html(request):
        return login_page()
    return web.json_response(
        {"error": "a token is required: Authorization: Bearer <api.token>"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="chargepoint"'},
    )


def _signed_in(location: str, token: str) -> web.Response:
    """303 to ``location`` with the session cookie."""
    response = web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})
    response.set_cookie(COOKIE, session_value(token), path="/", httponly=True, samesite="Strict")
    return response


def middleware(token: str | None) -> Middleware:
    """The access check, around every route (inside the API's error middleware)."""
    session = session_value(token) if token is not None else None

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in SAFE_METHODS and not _same_origin(request):
            return web.json_response({"error": "cross-origin request refused"}, status=403)
        if token is None or session is None:
            return await handler(request)
        if request.path == LOGIN_PATH:
            return await _login(request, token)
        bearer = _bearer(request)
        if bearer is not None:
            if _same(bearer, token):
                return await handler(request)
            return _refused(request)
        cookie = request.cookies.get(COOKIE)
        if cookie is not None and _same(cookie, session):
            return await handler(request)
        query_token = request.query.get("token")
        if query_token is not None and request.method == "GET" and _same(query_token, token):
            rest = [(k, v) for k, v in request.query.items() if k != "token"]
            target = request.path + (f"?{urlencode(rest)}" if rest else "")
            return _signed_in(target, token)
        return _refused(request)

    return access


async def _login(request: web.Request, token: str) -> web.StreamResponse:
    if request.method != "POST":
        return login_page(status=200)
    try:
        form = await request.post()
    except ValueError:
        form = None
    given = form.get("token") if form is not None else None
    if not isinstance(given, str) or len(given) > MAX_TOKEN_CHARS or not _same(given, token):
        log.warning("web page login refused (wrong token) from %s", request.remote)
        return login_page("Wrong token.")
    return _signed_in("/", token)
