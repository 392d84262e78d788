"""ASGI middleware in front of every route: the API key and the body-size limit.

Health (``/healthz``, ``/livez``, ``/readyz``), ``/metrics`` and the OpenAPI page stay open, so a load balancer
and a person reading the docs need no key.
"""

from __future__ import annotations

import hmac

from starlette.responses import JSONResponse

from aoi.settings import Settings, get_settings

OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/metrics", "/", "/docs.json", "/schema.json")
OPEN_PREFIXES = ("/static_content/",)
# The batchable model calls: routes like any BentoML API, for callers that send preprocessed batches. BentoML answers a body it cannot turn
# into an array with a 500; from outside that is the caller's mistake, so it is reported as one.
BATCH_PATHS = ("/forward_gray", "/forward_color")
_MALFORMED = b'{"error":"malformed batch: send {\\"batch\\": a (N, C, H, W) float32 array} (an internal route; use /classify)"}'


def _malformed_batch_is_400(send):
    replaced = False

    async def wrapped(message) -> None:
        nonlocal replaced
        if message["type"] == "http.response.start" and message["status"] == 500:
            replaced = True
            message = {**message, "status": 400,
                       "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(_MALFORMED)).encode())]}  # fmt: skip
        elif message["type"] == "http.response.body" and replaced:
            message = {**message, "body": _MALFORMED if not message.get("more_body") else b""}
        await send(message)

    return wrapped


class Guard:
    def __init__(self, app, settings: Settings | None = None) -> None:
        self.app = app
        self._settings = settings  # None: the process's settings, read per request (cached), never at import

    @property
    def settings(self) -> Settings:
        return self._settings or get_settings()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refuse(scope)
        if refusal is not None:
            return await refusal(scope, receive, send)
        if scope["path"] in BATCH_PATHS:
            return await self.app(scope, receive, _malformed_batch_is_400(send))
        return await self.app(scope, receive, send)

    def refuse(self, scope) -> JSONResponse | None:
        path, settings = scope["path"], self.settings
        api_key = settings.api_key.get_secret_value() if settings.api_key else None
        max_body = settings.serving.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if api_key and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
            scheme, _, token = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip(), api_key):
                return JSONResponse({"error": "missing or wrong API key: send 'Authorization: Bearer <AOI_API_KEY>'"},
                                    status_code=401, headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
        if path == "/classify" and scope["method"] == "POST":
            content_type = headers.get("content-type", "")
            if not content_type.lower().startswith("multipart/form-data"):
                return JSONResponse({"error": "send multipart/form-data with the image in the field 'image'"}, status_code=415)
            if "boundary=" not in content_type:
                return JSONResponse({"error": "multipart/form-data without a boundary"}, status_code=400)
        if scope["method"] in ("POST", "PUT", "PATCH"):
            length = headers.get("content-length")
            if length is None:
                if headers.get("transfer-encoding"):
                    return JSONResponse({"error": "send Content-Length: chunked uploads are not accepted"}, status_code=411)
            elif not length.isdigit():
                return JSONResponse({"error": f"bad Content-Length {length!r}"}, status_code=400)
            elif int(length) > max_body:
                return JSONResponse({"error": f"request body of {int(length):,} bytes is over the limit of "
                                              f"{max_body:,} (AOI_SERVING__MAX_BODY_BYTES)"}, status_code=413)  # fmt: skip
        return None
