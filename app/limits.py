"""Limits on what one request, and one client, can ask of the server, enforced before the app runs.

``BodyLimit``: a size limit on every request body, enforced before a byte of it is read.

Every request but an upload takes up to GATESCOPE_MAX_BODY_MB; POST /api/models checks its own
Content-Length against GATESCOPE_MAX_UPLOAD_MB (app/api/models.py) before it reads the form, and POST
/api/models/{id}/index against GATESCOPE_MAX_CORPUS_MB (app/api/index.py). A body
without a Content-Length (chunked) is refused with 411: browsers and HTTP libraries send the length
of what they post.

``ClientLimit``: at most GATESCOPE_MAX_CLIENT_REQUESTS API requests in progress from one client address
(429 past it, with Retry-After), so one client cannot take every worker thread. The page and the live
socket need one or two at a time.
"""

from __future__ import annotations

from collections import Counter

from starlette.types import ASGIApp, Receive, Scope, Send

from .security import refuse
from .settings import Settings

#: Methods that carry a body.
WITH_BODY = {"POST", "PUT", "PATCH", "DELETE"}


class BodyLimit:
    """ASGI middleware: 413 over the limit, 411 without a length, before the app sees the request."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            return await self.app(scope, receive, send)
        if scope["method"] == "POST" and (scope["path"] == "/api/models" or _is_index(scope["path"])):
            return await self.app(scope, receive, send)  # the upload handlers check their own limits
        headers = dict(scope["headers"])
        length, limit = headers.get(b"content-length"), self.settings.max_body_mb
        if length is None:
            if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
                return await refuse(scope, send, "send the request with a Content-Length header", 411)
            return await self.app(scope, receive, send)  # no body at all
        if not length.isdigit():
            return await refuse(scope, send, f"Content-Length {length.decode('latin-1')!r} is not a number", 400)
        if int(length) > limit << 20:
            size = f"{int(length) / 2**20:.1f} MB"
            return await refuse(scope, send, f"the body is {size}; this server takes at most {limit} MB a request", 413)
        await self.app(scope, receive, send)


def _is_index(path: str) -> bool:
    """POST /api/models/{id}/index: a corpus, checked against GATESCOPE_MAX_CORPUS_MB by its handler."""
    parts = path.split("/")
    return len(parts) == 5 and parts[:3] == ["", "api", "models"] and parts[4] == "index" and parts[3] != ""


class ClientLimit:
    """ASGI middleware: 429 when a client address has ``max_client_requests`` API requests in progress."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.limit = app, settings.max_client_requests
        self.busy: Counter[str] = Counter()  # requests in progress per client address (the loop is one thread)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            return await self.app(scope, receive, send)
        who = scope["client"][0] if scope.get("client") else "?"
        if self.busy[who] >= self.limit:
            detail = (
                f"this client has {self.limit} requests in progress already (GATESCOPE_MAX_CLIENT_REQUESTS): "
                "wait for one to end"
            )
            return await refuse(scope, send, detail, 429, retry_after=1)
        self.busy[who] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.busy[who] -= 1
            if not self.busy[who]:
                del self.busy[who]
