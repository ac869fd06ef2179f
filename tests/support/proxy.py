"""A forward HTTP proxy on 127.0.0.1 that counts who came through it and names itself in Via (PROXY tests)."""

from __future__ import annotations

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
    def __init__(self, name: str = "proxy") -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Forward)
        self._httpd.daemon_threads = True
        self._httpd.name = name  # type: ignore[attr-defined]
        self._httpd.clients = Counter()  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def clients(self) -> Counter:
        return self._httpd.clients  # type: ignore[attr-defined]

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
