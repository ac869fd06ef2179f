"""A forward HTTP proxy on 127.0.0.1 that counts who came through it and names itself in Via (PROXY tests)."""

from __future__ import annotations

import base64
import http.client
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade"}


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        target = urlsplit(self.path)  # a proxy receives the absolute URL
        expected = self.server.expected  # type: ignore[attr-defined]
        if expected is not None and self.headers.get("Proxy-Authorization") != expected:
            self.server.refused += 1  # type: ignore[attr-defined]
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="lab"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.cookies.append(self.headers.get("Cookie"))  # type: ignore[attr-defined]
        # ffmpeg always asks for Icy metadata; its User-Agent is ours to set, so it cannot tell.
        client = "ffmpeg" if self.headers.get("Icy-MetaData") else "other"
        self.server.clients[client] += 1  # type: ignore[attr-defined]
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Via"] = f"1.1 {self.server.name}"  # type: ignore[attr-defined]  # as real proxies say who passed it on
        upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
        upstream.request("GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers)
        response = upstream.getresponse()
        body = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        upstream.close()


class CountingProxy:
    """``credentials`` (user, password): answer 407 to a request without them, as a paid proxy does."""

    def __init__(self, name: str = "proxy", credentials: tuple[str, str] | None = None) -> None:
        self.credentials = credentials
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
        self._httpd.expected = (None if credentials is None else  # type: ignore[attr-defined]
                                "Basic " + base64.b64encode(":".join(credentials).encode()).decode())
        self._httpd.refused = 0  # type: ignore[attr-defined]
        self._httpd.cookies = []  # type: ignore[attr-defined]  # the Cookie header of each request passed on
        self._httpd.daemon_threads = True
        self._httpd.name = name  # type: ignore[attr-defined]
        self._httpd.clients = Counter()  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        login = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"http://{login}127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def cookies(self) -> list[str | None]:
        return self._httpd.cookies  # type: ignore[attr-defined]

    @property
    def refused(self) -> int:
        return self._httpd.refused  # type: ignore[attr-defined]

    @property
    def clients(self) -> Counter:
        return self._httpd.clients  # type: ignore[attr-defined]

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
