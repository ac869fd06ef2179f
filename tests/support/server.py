"""A local HTTP media server for tests and benchmarks (127.0.0.1 only).

It serves files with real Range support (206, Content-Range), counts the bytes it
actually sent per path, and can add per-request latency and per-connection
bandwidth limits so that byte counts are honest (a throttled server cannot push a
whole file into socket buffers before the client hangs up). Extra routes (a fake
YouTube for pytube) plug in as functions.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

CHUNK = 16 * 1024
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "text/plain"),)


HANDLED = Reply(0)  # a route returns this when it has answered the request itself

# A route gets the handler (method, path, query, body) and returns a Reply,
# or None to fall through to the files.
Route = Callable[["Handler"], "Reply | None"]


class MediaServer:
    def __init__(self, root: Path, latency_s: float = 0.0, bandwidth_bps: float | None = None) -> None:
        self.root = root
        self.latency_s = latency_s
        self.bandwidth_bps = bandwidth_bps
        self.routes: list[Route] = []
        self.bytes_sent: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._httpd.media = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def count(self, path: str, sent: int = 0, request: bool = False) -> None:
        with self._lock:
            self.bytes_sent[path] += sent
            if request:
                self.requests[path] += 1

    def reset_counts(self) -> None:
        with self._lock:
            self.bytes_sent.clear()
            self.requests.clear()

    def __enter__(self) -> MediaServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def media(self) -> MediaServer:
        return self.server.media  # type: ignore[attr-defined]

    @property
    def url_path(self) -> str:
        return urlsplit(self.path).path

    @property
    def query(self) -> str:
        return urlsplit(self.path).query

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        self._handle(send_body=True)

    def _handle(self, send_body: bool) -> None:
        self.media.count(self.url_path, request=True)
        if self.media.latency_s:
            time.sleep(self.media.latency_s)
        for route in self.media.routes:
            reply = route(self)
            if reply is HANDLED:
                return
            if reply is not None:
                self.send_reply(reply, send_body)
                return
        self.send_file(send_body)

    def send_reply(self, reply: Reply, send_body: bool = True) -> None:
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if send_body:
            self.write_throttled(reply.body)

    def send_file(self, send_body: bool, limit: int | None = None) -> None:
        """Serve a file under the root with Range support; ``limit`` truncates the body."""
        relative = self.url_path.lstrip("/")
        path = (self.media.root / relative).resolve()
        if self.media.root.resolve() not in path.parents or not path.is_file():
            self.send_reply(Reply(404, b"not found"), send_body)
            return
        self.send_bytes(path.read_bytes(), _content_type(path), send_body, limit)

    def send_bytes(self, data: bytes, content_type: str, send_body: bool, limit: int | None = None,
                   headers: tuple[tuple[str, str], ...] = (), write: Callable[[bytes], None] | None = None) -> None:
        """``data`` honouring Range (206, Content-Range; 416 past its end); ``write`` sends the body (throttled)."""
        start, end = 0, len(data) - 1
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = int(match.group(2)) if match.group(2) else end
            else:  # a suffix range: the last N bytes
                start = max(0, len(data) - int(match.group(2)))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(end, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start : end + 1]
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            (write or self.write_throttled)(body if limit is None else body[:limit])

    def write_throttled(self, body: bytes) -> None:
        bandwidth = self.media.bandwidth_bps
        started = time.monotonic()
        sent = 0
        try:
            for offset in range(0, len(body), CHUNK):
                chunk = body[offset : offset + CHUNK]
                self.wfile.write(chunk)
                sent += len(chunk)
                self.media.count(self.url_path, sent=len(chunk))
                if bandwidth:
                    ahead = sent / bandwidth - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _content_type(path: Path) -> str:
    types = {".m4a": "audio/mp4", ".mp4": "video/mp4", ".webm": "audio/webm"}
    return types.get(path.suffix, "application/octet-stream")
