"""The local server's security model, after Jupyter Server's: gatescope runs beside the user's browser,
so no other web page may drive it.

- **Host allow-list** (DNS rebinding): a request whose ``Host`` is not a name of this server
  (loopback names, the bound address, ``GATESCOPE_ALLOWED_HOSTS``) is refused with 403. A page on
  ``evil.example`` that re-points its name at 127.0.0.1 still sends ``Host: evil.example``.
- **Origin checks**: every state-changing request (POST, PUT, PATCH, DELETE) and every WebSocket that
  carries an ``Origin`` must come from this server's own origin; other pages' requests get 403 (a
  cross-site multipart upload is a "simple" request that no preflight stops). Requests without an
  ``Origin`` (curl, scripts, the tests) are not a browser page's and pass.
- **A token off loopback**: with ``GATESCOPE_TOKEN`` set (``gatescope serve`` makes one whenever it
  binds to a non-loopback address, and prints the URL that carries it), every request must carry it:
  ``?token=``, ``Authorization: token <t>``, or the cookie the page gets when opened with ``?token=``.
  Bound off loopback with a token, any Host passes (other machines' names for it are unknown).
- **Headers on every response**: a Content-Security-Policy that allows only this server's scripts,
  styles, images and connections and no framing, plus X-Content-Type-Options, X-Frame-Options,
  Referrer-Policy and Cross-Origin-Opener/Resource-Policy. A route may set a stricter or more
  specific CSP of its own (the API docs allow their one inline script by its hash).
"""

from __future__ import annotations

import hmac
import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .settings import LOOPBACK, Settings

#: Methods that change nothing (no Origin check).
SAFE = {"GET", "HEAD", "OPTIONS"}
#: The cookie that carries the token for the page's own requests.
TOKEN_COOKIE = "gatescope_token"

#: Scripts, styles, images, fonts and connections from this server only; plotly and Swagger UI set
#: inline styles; ReDoc runs a worker from a blob.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def hostname(host: str) -> str:
    """A Host header's name without its port: 'localhost:8000' -> 'localhost', '[::1]:80' -> '::1'."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class Guard:
    """ASGI middleware that enforces the model above before any route runs."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.settings = app, settings
        names = set(LOOPBACK) | {h.lower() for h in settings.allowed_hosts}
        if settings.host:
            names.add(settings.host.lower())
        if settings.token and settings.host and settings.host not in LOOPBACK:
            names.add("*")  # bound for other machines: their names for it are unknown; the token guards it
        self.hosts = names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            return await refuse(scope, send, refusal)
        cookie = self._token_cookie(scope)
        await self.app(scope, receive, _with_headers(send, cookie))

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> str | None:
        """Why this request may not pass, or None."""
        host = headers.get("host", "")
        if "*" not in self.hosts and hostname(host).lower() not in self.hosts:
            return (
                f"this server does not answer to the host name {hostname(host)!r} "
                "(a DNS-rebinding page? GATESCOPE_ALLOWED_HOSTS adds names)"
            )
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method", "GET") not in SAFE
        if changes and origin is not None and urlsplit(origin).netloc.lower() != host.lower():
            return f"requests from {origin} may not use this server: only its own page may"
        if self.settings.token and not self._has_token(scope, headers):
            return "this server needs its token: open the URL `gatescope serve` printed (it ends in ?token=...)"
        return None

    def _has_token(self, scope: Scope, headers: dict[str, str]) -> bool:
        token = self.settings.token or ""
        given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        auth = headers.get("authorization", "")
        if auth.lower().startswith("token "):
            given = given or auth[6:].strip()
        jar = SimpleCookie(headers.get("cookie", ""))
        if TOKEN_COOKIE in jar:
            given = given or jar[TOKEN_COOKIE].value
        return hmac.compare_digest(given.encode(), token.encode())

    def _token_cookie(self, scope: Scope) -> bytes | None:
        """The cookie that lets the page's own requests carry the token once it was in the URL."""
        if not self.settings.token or scope["type"] != "http":
            return None
        if b"token=" not in scope.get("query_string", b""):
            return None
        return f"{TOKEN_COOKIE}={self.settings.token}; Path=/; HttpOnly; SameSite=Strict".encode()


def _with_headers(send: Send, cookie: bytes | None) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [(k, v) for k, v in HEADERS if k not in present]
            if b"content-security-policy" not in present:
                headers.append((b"content-security-policy", CSP.encode()))
            if cookie is not None:
                headers.append((b"set-cookie", cookie))
            message = {**message, "headers": headers}
        await send(message)

    return wrapped


async def refuse(scope: Scope, send: Send, detail: str, status: int = 403, retry_after: int | None = None) -> None:
    """A refusal before the app runs: ``{"detail"}`` with the hardening headers (a WebSocket handshake
    is refused with the same response, or closed when the server cannot send one)."""
    body = json.dumps({"detail": detail}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    headers += HEADERS + [(b"content-security-policy", CSP.encode())]
    if scope["type"] == "websocket":
        if "websocket.http.response" in scope.get("extensions", {}):  # the reason, as an HTTP 403
            await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:  # a close before accepting: the server answers the handshake with 403
            await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def allow_inline_scripts(response: Any) -> Any:
    """``response`` (an HTML page) with a CSP that allows exactly its own inline scripts, by their hashes."""
    import base64
    import hashlib
    import re

    html = bytes(response.body).decode()
    hashes = [
        "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
        for code in re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    ]
    response.headers["content-security-policy"] = CSP.replace(
        "script-src 'self'", " ".join(["script-src 'self'", *hashes])
    )
    return response
