"""How the mock faces the network: connection bounds, the admin token, and logs that do not grow per connection.

Issue 9 measured 200 slow-header connections held for 60 s, and 300 idle ones taking the health endpoint down
while writing 182 MB of tracebacks. So:

* **idle/header timeout**: a connection that has not sent a complete request head within ``idle_timeout``
  seconds (on connect, or after its last response) is closed. aiohttp's ``keepalive_timeout`` does exactly this
  (its timer starts at connect and is only re-armed after a response), so the mock sets it on every app it
  builds (``handler_args``), wherever the app runs. A request being answered is never cut by it.
* **connection cap**: :class:`GuardedSite` refuses connections past ``max_connections`` with a ``503`` and
  ``Connection: close`` written straight to the socket, without parsing anything.
* **logs**: :class:`EventLog` writes one line per event class per interval (with the count), and
  :class:`OncePerClass` does the same for aiohttp's own per-connection error tracebacks.

The admin API changes what every client of the mock sees, so a bind that is not loopback requires a token
(``--admin-token`` or ``PROVCERT_MOCK_ADMIN_TOKEN``), sent as ``x-mock-admin-token`` on every ``/_mock/`` call.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

#: Seconds a connection may stay without sending a complete request head (at connect or between requests).
DEFAULT_IDLE_TIMEOUT = 15.0
#: Connections served at once; more are answered 503 and closed.
DEFAULT_MAX_CONNECTIONS = 512
#: Environment variable holding the admin token when ``--admin-token`` is not given.
ADMIN_TOKEN_ENV = "PROVCERT_MOCK_ADMIN_TOKEN"  # noqa: S105 (a variable name, not a secret)
#: Request header carrying the admin token.
ADMIN_TOKEN_HEADER = "x-mock-admin-token"  # noqa: S105 (a header name, not a secret)
#: Admin routes live under this prefix (kept here so this module does not import the app).
ADMIN_PREFIX = "/_mock/"

logger = logging.getLogger("mockserver.serving")


# ------------------------------------------------------------------------------------------------ admin token
def is_loopback(host: str) -> bool:
    """True for ``localhost`` and any address in 127.0.0.0/8 or ``::1``; False for wildcards, other
    addresses and names (a name may resolve anywhere, so it is treated as exposed)."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def admin_token_problem(host: str, token: str | None) -> str | None:
    """Why the mock must not start on ``host`` with ``token`` (None when it may)."""
    if token:
        return None
    if is_loopback(host):
        return None
    return (
        f"the admin API would be open to the network on {host!r}: give --admin-token (or set {ADMIN_TOKEN_ENV}) "
        f"for any non-loopback bind; clients send it as the {ADMIN_TOKEN_HEADER} header"
    )


def admin_auth(token: str) -> Middleware:
    """Middleware: every ``/_mock/`` call must carry ``x-mock-admin-token: <token>`` (compared in constant
    time); others get a 401 that names the header, never the token."""
    expected = token.encode()

    @web.middleware
    async def require_admin_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            given = request.headers.get(ADMIN_TOKEN_HEADER, "").encode("utf-8", "surrogateescape")
            if not hmac.compare_digest(given, expected):
                return web.json_response(
                    {
                        "error": {
                            "message": f"admin API: missing or wrong {ADMIN_TOKEN_HEADER} header",
                            "type": "mock_admin_unauthorized",
                            "param": ADMIN_TOKEN_HEADER,
                            "code": None,
                        }
                    },
                    status=401,
                )
        return await handler(request)

    return require_admin_token


# ----------------------------------------------------------------------------------------------------- logs
class EventLog:
    """One log line per event class per ``interval`` seconds: the first occurrence at once, later ones counted
    and reported with the next line of their class. Keeps a flood of connections from flooding the log."""

    def __init__(self, log: logging.Logger = logger, interval: float = 10.0) -> None:
        self.log = log
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def event(self, kind: str, message: str) -> bool:
        """Log ``message`` unless ``kind`` was logged less than ``interval`` ago; True if a line was written."""
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return False
        self._last[kind] = now
        more = self._suppressed.pop(kind, 0)
        suffix = f" ({more} more since the last report)" if more else ""
        self.log.warning("%s: %s%s", kind, message, suffix)
        return True


class OncePerClass(logging.Filter):
    """Lets one record per (logger, exception class) through per ``interval`` seconds: aiohttp logs a full
    traceback per failing connection, which is how 300 idle connections wrote 182 MB in a minute."""

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else record.msg
        key = (record.name, str(exc))
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self.suppressed += 1
            return False
        self._last[key] = now
        return True


def install_log_bounds(interval: float = 10.0) -> OncePerClass:
    """Attach :class:`OncePerClass` to aiohttp's server logger (idempotent); returns the filter."""
    target = logging.getLogger("aiohttp.server")
    for existing in target.filters:
        if isinstance(existing, OncePerClass):
            return existing
    bound = OncePerClass(interval)
    target.addFilter(bound)
    return bound


# ---------------------------------------------------------------------------------------------- connections
@dataclass(frozen=True)
class ConnectionLimits:
    """The bounds :class:`GuardedSite` and the app enforce (see the module docstring)."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS


_REFUSAL_BODY = (
    b'{"error": {"message": "mock server: connection limit reached, try again", '
    b'"type": "mock_overloaded", "param": null, "code": null}}'
)
REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Retry-After: 1\r\nContent-Length: " + str(len(_REFUSAL_BODY)).encode() + b"\r\n\r\n" + _REFUSAL_BODY
)


class _Refuse(asyncio.Protocol):
    """Answers a connection past the cap with a fixed 503 and closes it; reads nothing."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(REFUSAL)
        transport.close()


class GuardedSite(web.BaseSite):
    """A TCP site whose protocol factory refuses connections past ``max_connections`` (counted by the runner's
    server, so connections still finishing a response count too)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        events: EventLog | None = None,
        shutdown_timeout: float = 60.0,
    ) -> None:
        super().__init__(runner, shutdown_timeout=shutdown_timeout)
        self._host = host
        self._port = port
        self.max_connections = max_connections
        self.events = events or EventLog()
        self.refused = 0

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() first"
        cap = self.max_connections

        def factory() -> asyncio.Protocol:
            if len(server.connections) >= cap:
                self.refused += 1
                self.events.event("connection cap", f"{cap} connections open, refusing new ones with 503")
                return _Refuse()
            return server()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(factory, self._host, self._port, backlog=self._backlog)
