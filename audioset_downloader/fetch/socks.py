"""SOCKS5 identities: a local HTTP proxy that passes every request on through a SOCKS5 proxy.

ffmpeg, which fetches the media, speaks only HTTP proxies, and pytube's urllib none
but HTTP either; yt-dlp alone speaks SOCKS. So an identity whose proxy is
``socks5://`` (or ``socks5h://``, the proxy resolving names) is given to everything as
``http://127.0.0.1:PORT``: a relay in this process, on loopback only, that takes an
HTTP proxy request (CONNECT host:port for https, or an absolute-URI request for http)
and opens the connection through the SOCKS5 proxy (RFC 1928, with RFC 1929's user
name and password when the URL carries them). Every backend and ffmpeg then go out
through the one address, as the identity requires.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import secrets
import select
import socket
import socketserver
import struct
import threading
from dataclasses import replace
from urllib.parse import unquote, urlsplit

from audioset_downloader.fetch.header_relay import basic_credentials
from audioset_downloader.inputs.identities import SOCKS_SCHEMES
from audioset_downloader.inputs.settings import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 30.0
MAX_HEAD = 64 * 1024
CHUNK = 64 * 1024
_REPLIES = {1: "general failure", 2: "connection not allowed by its rules", 3: "network unreachable",
            4: "host unreachable", 5: "connection refused", 6: "TTL expired", 7: "command not supported",
            8: "address type not supported"}


class SocksError(OSError):
    """The SOCKS5 proxy refused or failed the connection."""


def is_socks(url: str | None) -> bool:
    return url is not None and urlsplit(url).scheme in SOCKS_SCHEMES


def relayed(settings: Settings) -> Settings:
    """``settings`` with a SOCKS5 proxy swapped for this process's local HTTP relay through it."""
    if not is_socks(settings.proxy):
        return settings
    assert settings.proxy is not None
    return replace(settings, proxy=local_http_proxy(settings.proxy))


@functools.cache
def local_http_proxy(socks_url: str) -> str:
    """The http:// URL of this process's relay through ``socks_url``, started on first use."""
    server = _Relay(("127.0.0.1", 0), _Handler)
    server.socks_url = socks_url
    # Only this process may use the relay, and so the SOCKS proxy's sign-in: a client shows the
    # token, which travels in the URL to pytube (in memory) and to ffmpeg (in its environment).
    token = secrets.token_urlsafe(24)
    server.expected = basic_credentials(f"http://relay:{token}@relay").encode()
    threading.Thread(target=server.serve_forever, name="socks-relay", daemon=True).start()
    host, port = server.server_address[:2]
    return f"http://relay:{token}@{host}:{port}"


def open_via_socks(socks_url: str, host: str, port: int, timeout: float = CONNECT_TIMEOUT_S) -> socket.socket:
    """A TCP connection to host:port through the SOCKS5 proxy, ready for the bytes of either side."""
    proxy = urlsplit(socks_url)
    sock = socket.create_connection((proxy.hostname, proxy.port or 1080), timeout=timeout)
    try:
        user, password = unquote(proxy.username or ""), unquote(proxy.password or "")
        methods = b"\x00\x02" if user else b"\x00"
        sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
        version, method = _exactly(sock, 2)
        if version != 5:
            raise SocksError(f"{proxy.hostname}:{proxy.port} is not a SOCKS5 proxy")
        if method == 2:
            sock.sendall(b"\x01" + _short(user.encode()) + _short(password.encode()))
            if _exactly(sock, 2)[1] != 0:
                raise SocksError(f"{proxy.hostname}:{proxy.port} refused the user name and password")
        elif method != 0:
            raise SocksError(f"{proxy.hostname}:{proxy.port} accepts none of our ways to sign in"
                             + ("" if user else " (it may want a user name: socks5://user:password@host:port)"))
        sock.sendall(b"\x05\x01\x00" + _address(host, port, remote_dns=proxy.scheme == "socks5h")
                     + port.to_bytes(2, "big"))
        _, reply, _, kind = _exactly(sock, 4)
        if reply != 0:
            raise SocksError(f"{proxy.hostname}:{proxy.port} could not reach {host}:{port}: "
                             f"{_REPLIES.get(reply, f'error {reply}')}")
        # The address it bound (unused): IPv4, IPv6, or a name with its length first; then the port.
        length = {1: 4, 4: 16}.get(kind)
        _exactly(sock, (length if length is not None else _exactly(sock, 1)[0]) + 2)
        sock.settimeout(None)
        return sock
    except BaseException:
        sock.close()
        raise


def _address(host: str, port: int, remote_dns: bool) -> bytes:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if remote_dns:
            return b"\x03" + _short(host.encode("idna"))
        ip = ipaddress.ip_address(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    return (b"\x01" if ip.version == 4 else b"\x04") + ip.packed


def _short(data: bytes) -> bytes:
    if len(data) > 255:
        raise SocksError("a SOCKS5 name, user name or password is at most 255 bytes")
    return bytes([len(data)]) + data


def _exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise SocksError("the SOCKS5 proxy closed the connection")
        data += chunk
    return data


class _Relay(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    socks_url = ""
    expected = b""  # the Proxy-Authorization a client must send


class _Handler(socketserver.BaseRequestHandler):
    """One client connection: one proxy request, then the bytes of both sides until either closes."""

    def handle(self) -> None:
        client: socket.socket = self.request
        head, rest = self._head(client)
        if head is None:
            return
        lines = head.split(b"\r\n")
        if not self._authorized(lines[1:]):
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"relay\""
                           b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        try:
            method, target, version = lines[0].split(b" ", 2)
            if method == b"CONNECT":
                host, _, port = target.decode("ascii").rpartition(":")
                host, first = host.strip("[]"), b""
            else:  # an absolute-URI request for http://: sent on in origin form, one request per connection
                url = urlsplit(target.decode("ascii"))
                if url.scheme != "http" or not url.hostname:
                    raise ValueError(target)
                host, port = url.hostname, str(url.port or 80)
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                kept = [line for line in lines[1:] if line and not line.lower().startswith(
                    (b"proxy-", b"connection:", b"keep-alive:"))]
                first = b"\r\n".join([method + b" " + path.encode("ascii") + b" " + version, *kept,
                                      b"Connection: close", b"", b""])
            upstream = open_via_socks(self.server.socks_url, host, int(port))  # type: ignore[attr-defined]
        except (ValueError, UnicodeDecodeError):
            client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        except SocksError as exc:  # the proxy answered, and refused: as an HTTP proxy says so
            log.info("SOCKS5 relay: %s", exc)
            body = f"SOCKS5: {exc}".encode()
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: "
                           + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            return
        except OSError as exc:  # the proxy cannot be reached: the client sees its connection reset, a network error
            proxy = urlsplit(self.server.socks_url)  # type: ignore[attr-defined]
            log.info("SOCKS5 relay: cannot reach %s:%s: %s", proxy.hostname, proxy.port, exc)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        with upstream:
            if method == b"CONNECT":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(first + rest)
            _splice(client, upstream)

    def _authorized(self, headers: list[bytes]) -> bool:
        given = next((line.partition(b":")[2].strip() for line in headers
                      if line.lower().startswith(b"proxy-authorization:")), b"")
        return hmac.compare_digest(given, self.server.expected)  # type: ignore[attr-defined]

    @staticmethod
    def _head(client: socket.socket) -> tuple[bytes | None, bytes]:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(CHUNK)
            if not chunk or len(data) > MAX_HEAD:
                return None, b""
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head, rest


def _splice(a: socket.socket, b: socket.socket) -> None:
    peers = {a: b, b: a}
    try:
        while True:
            readable, _, _ = select.select(list(peers), [], [])
            for sock in readable:
                data = sock.recv(CHUNK)
                if not data:
                    return
                peers[sock].sendall(data)
    except OSError:
        return
