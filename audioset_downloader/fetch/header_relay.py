"""Secret request headers (a Cookie) reach the media host through a relay, never on ffmpeg's command line.

ffmpeg takes request headers only as an argument (``-headers``), and any user of the machine can
read a process's arguments (``ps``, ``/proc/PID/cmdline``). So when a media source's headers carry
a secret, ffmpeg is given ``http://ROUTE.relay.invalid/NAME`` and this process's relay as its HTTP
proxy. The relay looks the route up, fetches the real URL (https included, through the identity's
own proxy when it has one) with the secret headers added and the Range ffmpeg asked for, and passes
the answer back as it came: ffmpeg seeks and cuts exactly as it would on the origin, and the origin
sees the same requests. The relay listens on loopback and serves only a client that presents its
token as proxy credentials, which ffmpeg gets in its environment (``http_proxy``): a process's
environment, unlike its arguments, is readable by its owner alone. Why not a file of headers:
ffmpeg cannot read a protocol option from a file, and a file would be a secret at rest.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hmac
import http.client
import secrets
import shutil
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urljoin, urlsplit

SECRET_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
ROUTE_DOMAIN = "relay.invalid"  # .invalid never resolves (RFC 6761): the name only travels to the relay
MAX_REDIRECTS = 5
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authorization", "proxy-authenticate", "proxy-connection",
                        "te", "trailer", "transfer-encoding", "upgrade", "host"})
_REDIRECTS = (301, 302, 303, 307, 308)


def secret_headers(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple((name, value) for name, value in headers if name.lower() in SECRET_HEADERS)


def basic_credentials(url: str) -> str | None:
    """The Basic Proxy-Authorization value for a proxy URL's user and password, None without them."""
    parts = urlsplit(url)
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


@dataclass(frozen=True)
class Route:
    origin: str  # the media URL ffmpeg would have opened
    headers: tuple[tuple[str, str], ...]  # the secret headers to add
    proxy: str | None  # the identity's HTTP proxy, credentials included
    timeout: float
    # Why the origin could not be reached: ffmpeg only sees its connection end, so the cutter
    # adds these to ffmpeg's messages (a dead proxy must read as "Connection refused", as without the relay).
    failures: list[str] = field(default_factory=list)


class HeaderRelay:
    """This process's relay: routes registered for the length of one cut, served to token holders only."""

    def __init__(self) -> None:
        self._token = secrets.token_urlsafe(24)
        self._expected = "Basic " + base64.b64encode(f"relay:{self._token}".encode()).decode("ascii")
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.relay = self
        threading.Thread(target=self._server.serve_forever, name="header-relay", daemon=True).start()

    @property
    def proxy_url(self) -> str:
        """What ffmpeg gets as ``http_proxy``, in its environment only."""
        host, port = self._server.server_address[:2]
        return f"http://relay:{self._token}@{host}:{port}"

    @contextlib.contextmanager
    def route(self, origin: str, headers: tuple[tuple[str, str], ...], proxy: str | None, timeout: float,
              failures: list[str]) -> Iterator[str]:
        """The URL ffmpeg opens instead of ``origin`` while the block runs; ``failures`` gets why it failed."""
        key = secrets.token_hex(8)
        with self._lock:
            self._routes[key] = Route(origin, headers, proxy, timeout, failures)
        name = urlsplit(origin).path.rsplit("/", 1)[-1] or "media"
        try:
            yield f"http://{key}.{ROUTE_DOMAIN}/{name}"
        finally:
            with self._lock:
                del self._routes[key]

    def authorized(self, credentials: str | None) -> bool:
        return credentials is not None and hmac.compare_digest(credentials.encode(), self._expected.encode())

    def lookup(self, target: str) -> Route | None:
        host = urlsplit(target).hostname or ""
        key, _, domain = host.partition(".")
        with self._lock:
            return self._routes.get(key) if domain == ROUTE_DOMAIN else None


@functools.cache
def header_relay() -> HeaderRelay:
    """This process's relay, started on first use."""
    return HeaderRelay()


def open_origin(route: Route, method: str,
                headers: list[tuple[str, str]]) -> tuple[http.client.HTTPResponse, http.client.HTTPConnection]:
    """The origin's answer to ``method`` with ``headers`` and the route's secrets, redirects followed."""
    url = route.origin
    for _ in range(MAX_REDIRECTS + 1):
        parts = urlsplit(url)
        connection = _connection(parts.scheme, parts.hostname or "", parts.port, route)
        try:
            through_proxy = route.proxy is not None and parts.scheme == "http"
            target = url if through_proxy else (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", parts.netloc.rpartition("@")[2])
            for name, value in [*headers, *route.headers]:
                connection.putheader(name, value)
            if through_proxy and (credentials := basic_credentials(route.proxy or "")):
                connection.putheader("Proxy-Authorization", credentials)
            connection.endheaders()
            response = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        location = response.getheader("Location")
        if response.status not in _REDIRECTS or not location:
            return response, connection
        response.read()
        connection.close()
        url = urljoin(url, location)
    raise http.client.HTTPException(f"more than {MAX_REDIRECTS} redirects")


def _connection(scheme: str, host: str, port: int | None, route: Route) -> http.client.HTTPConnection:
    if route.proxy is None:
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=route.timeout, context=ssl.create_default_context())
        return http.client.HTTPConnection(host, port, timeout=route.timeout)
    proxy = urlsplit(route.proxy)
    if scheme == "https":  # a CONNECT tunnel through the proxy, then TLS to the origin
        connection = http.client.HTTPSConnection(proxy.hostname, proxy.port or 80, timeout=route.timeout,
                                                 context=ssl.create_default_context())
        credentials = basic_credentials(route.proxy)
        connection.set_tunnel(host, port or 443, headers={"Proxy-Authorization": credentials} if credentials else None)
        return connection
    return http.client.HTTPConnection(proxy.hostname, proxy.port or 80, timeout=route.timeout)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    relay: HeaderRelay


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # the worker logs what ffmpeg makes of it
        pass

    def do_GET(self) -> None:
        self._relay()

    def do_HEAD(self) -> None:
        self._relay()

    def _relay(self) -> None:
        relay = self.server.relay
        if not relay.authorized(self.headers.get("Proxy-Authorization")):
            self._answer(407, [("Proxy-Authenticate", 'Basic realm="audioset-downloader"')])
            return
        route = relay.lookup(self.path)
        if route is None:
            self._answer(404)
            return
        headers = [(name, value) for name, value in self.headers.items()
                   if name.lower() not in HOP_BY_HOP and name.lower() not in SECRET_HEADERS]
        try:
            response, connection = open_origin(route, self.command, headers)
        except (OSError, http.client.HTTPException) as exc:
            # As the SOCKS relay does: an origin or proxy out of reach is a reset to ffmpeg, a network error.
            route.failures.append(f"header relay: {exc}")
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        with contextlib.closing(connection), response:
            self._pass_on(response)

    def _pass_on(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        length = response.getheader("Content-Length")
        if length is not None:
            self.send_header("Content-Length", length)
        elif self.command != "HEAD":  # no length: the end of the body is the end of the connection
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            shutil.copyfileobj(response, self.wfile, 64 * 1024)
        except OSError:  # ffmpeg hung up (it seeks by closing one request and opening another)
            self.close_connection = True

    def _answer(self, status: int, headers: list[tuple[str, str]] | tuple = ()) -> None:
        self.send_response_only(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()
