"""ASGI middleware in front of every route: who may ask, what a request may hold, and the service's metrics.

- The API key (``AOI_API_KEY``): everything but health and the OpenAPI page needs ``Authorization: Bearer <key>``,
  ``/metrics`` included. Without a key the service answers loopback clients only (health excepted), so a bind
  beyond loopback without a key serves nobody by accident.
- ``POST /classify``: the body is read (up to ``AOI_SERVING__MAX_BODY_BYTES``) and parsed strictly
  (``serving/upload.py``); BentoML gets a freshly written copy of the accepted form, never the client's bytes.
- Every text a request carries (form fields, query parameters) is plain text: no control characters.
- Every refusal is a 4xx with a JSON ``{"error": ...}`` and no traceback in the log.
- ``/metrics`` is answered here, with bounded labels (``serving/http_metrics.py``).
"""

from __future__ import annotations

import hmac
import ipaddress
import time
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, Response

from aoi.settings import Settings, get_settings
from serving.http_metrics import CONTENT_TYPE, ROUTES, HttpMetrics, route_of
from serving.upload import Refused, boundary_of, parse_form, text_problem

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
OPEN_PATHS = (*HEALTH_PATHS, "/", "/docs.json", "/schema.json")
OPEN_PREFIXES = ("/static_content/",)
FEEDBACK_MAX_BYTES = 16 * 1024  # a POST /feedback body: {"request_id", "label", "by"} is well under 1 KiB


def _error(status: int, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _is_loopback(client) -> bool:
    """Whether the connection comes from this host. Not an IP address (a test client, a Unix socket): local."""
    if not client:
        return True
    try:
        return ipaddress.ip_address(str(client[0]).split("%")[0]).is_loopback
    except ValueError:
        return True


def _authorized(raw: bytes | None, key: bytes) -> bool:
    """``Authorization: Bearer <key>``, compared as bytes in constant time: any header value, never an error."""
    if not raw:
        return False
    scheme, _, token = raw.strip().partition(b" ")
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(b" \t"), key)


class Guard:
    def __init__(self, app, settings: Settings | None = None) -> None:
        self.app = app
        self._settings = settings  # None: the process's settings, read per request (cached), never at import
        self.metrics = HttpMetrics()

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route, started, status = route_of(scope["path"]), time.perf_counter(), [0]

        async def recorded(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        self.metrics.in_progress.labels(route).inc()
        try:
            await self._handle(scope, receive, recorded)
        finally:
            self.metrics.in_progress.labels(route).dec()
            self.metrics.observe(route, scope["method"], status[0], time.perf_counter() - started)

    async def _handle(self, scope, receive, send) -> None:
        try:
            self.check(scope)
            route = route_of(scope["path"])
            if route == "other":
                raise Refused(404, f"no such route: {scope['path'][:80]!r} (the OpenAPI page at / lists the routes)")
            if route in ROUTES and scope["method"] not in ROUTES[route]:
                raise Refused(405, f"{route} takes {' or '.join(ROUTES[route])}, not {scope['method'][:20]}")
            if scope["path"] == "/metrics" and scope["method"] in ("GET", "HEAD"):
                return await Response(self.metrics.exposition(), media_type=CONTENT_TYPE)(scope, receive, send)
            if scope["path"] == "/feedback" and scope["method"] == "POST":
                _json_body_type(scope)
            if scope["path"] == "/classify" and scope["method"] == "POST":
                scope, receive = await self._checked_form(scope, receive)
                if scope is None:
                    return  # the client went away
        except Refused as refusal:
            headers = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else {}
            return await _error(refusal.status, str(refusal), **headers)(scope, receive, send)
        return await self.app(scope, receive, send)

    def check(self, scope) -> None:
        """Refuse what the headers and the query string already show to be wrong (``Refused``)."""
        path, settings = scope["path"], self.settings
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name.lower(), value)
        open_path = path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)
        if settings.api_key is None:
            if not open_path and not _is_loopback(scope.get("client")):
                raise Refused(
                    403,
                    "this service has no API key (AOI_API_KEY) and answers only this host; "
                    "set a key to serve other hosts",
                )
        elif not open_path and not _authorized(
            headers.get(b"authorization"), settings.api_key.get_secret_value().encode()
        ):
            raise Refused(401, "missing or wrong API key: send 'Authorization: Bearer <AOI_API_KEY>'")
        try:
            query = parse_qsl(
                scope.get("query_string", b"").decode("latin-1"),
                keep_blank_values=True,
                encoding="utf-8",
                errors="strict",
            )
        except UnicodeDecodeError:
            raise Refused(400, "the query string is not UTF-8 text") from None
        for name, value in query:
            problem = text_problem("a query parameter name", name) or text_problem(name[:40], value)
            if problem:
                raise Refused(400, problem)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            # /feedback takes a small JSON object: an image-sized body there is no report
            max_body = FEEDBACK_MAX_BYTES if path == "/feedback" else settings.serving.max_body_bytes
            length = headers.get(b"content-length")
            if length is None:
                if headers.get(b"transfer-encoding"):
                    raise Refused(411, "send Content-Length: chunked uploads are not accepted")
            elif not length.isdigit():
                raise Refused(400, f"bad Content-Length {length.decode('latin-1')[:40]!r}")
            elif int(length) > max_body:
                raise Refused(
                    413,
                    f"request body of {int(length):,} bytes is over the limit of {max_body:,}"
                    + ("" if path == "/feedback" else " (AOI_SERVING__MAX_BODY_BYTES)"),
                )

    async def _checked_form(self, scope, receive):
        """(scope, receive) that hand the app a fresh copy of the accepted form; ``Refused`` otherwise."""
        headers = dict((k.lower(), v) for k, v in scope["headers"])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        boundary_of(content_type)  # a wrong Content-Type is refused before the body is read
        body = await _read_body(receive, self.settings.serving.max_body_bytes)
        if body is None:
            return None, None
        new_type, new_body = parse_form(content_type, body).encode()
        kept = [(k, v) for k, v in scope["headers"] if k.lower() not in (b"content-type", b"content-length")]
        scope = {
            **scope,
            "headers": [*kept, (b"content-type", new_type.encode()), (b"content-length", str(len(new_body)).encode())],
        }
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": new_body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect like any app would

        return scope, replay


def _json_body_type(scope) -> None:
    """/feedback takes a JSON object: any other Content-Type is 415 before BentoML parses it (a multipart type
    without a boundary made it fail with a 500)."""
    raw = next((v for k, v in scope["headers"] if k.lower() == b"content-type"), b"")
    media = raw.decode("latin-1").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise Refused(415, f"send the report as application/json, not {media[:60] or 'no Content-Type'}")


async def _read_body(receive, limit: int) -> bytes | None:
    """The whole request body, refused past ``limit`` bytes whatever Content-Length said; None on disconnect."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"request body over the limit of {limit:,} bytes (AOI_SERVING__MAX_BODY_BYTES)")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
