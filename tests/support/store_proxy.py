"""A proxy on 127.0.0.1 in front of moto's S3 server that the tests steer: it fails or holds chosen requests.

The client (s3fs) is pointed at the proxy as at any S3 endpoint; every request goes on to moto
unchanged, unless a rule takes it: ``fail`` answers it with a 500 the way a store in trouble does
(botocore sees an InternalError), ``hold`` keeps it until the test sets an event. ``seen`` lists
every request as (method, key, query), so a test can wait for one (a listing, say).
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
FAILURE = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
           b"<Message>injected by the test's proxy</Message></Error>")


@dataclass
class Rule:
    method: str  # "PUT", "PUT|POST", ... or "*"
    key: re.Pattern[str]  # matched (search) against the request's path, bucket included
    times: int  # how many more requests it takes; -1: every one
    hold: threading.Event | None = None  # held until set; None: failed
    skip: int = 0  # matching objects (by key) let through first: the rule takes the next one's every request
    hits: int = 0  # requests it took
    _keys: list[str] = field(default_factory=list)

    def takes(self, method: str, path: str) -> bool:
        wanted = self.method == "*" or method in self.method.split("|")
        if not (wanted and self.times != 0 and self.key.search(path) is not None):
            return False
        if path not in self._keys:
            self._keys.append(path)
        return len(self._keys) > self.skip and self._keys[self.skip] == path


@dataclass
class StoreProxy:
    target: str  # moto's endpoint, http://host:port
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> StoreProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive and 100-continue, as S3 clients expect

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy._forward(self)

            do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        for rule in self.rules:
            if rule.hold is not None:
                rule.hold.set()
        self._server.shutdown()
        self._server.server_close()

    def fail(self, method: str, key: str, times: int = -1, skip: int = 0) -> Rule:
        """Fail the requests on the first object matching ``key`` (after ``skip`` such objects went through
        untouched), ``times`` of them (-1: every one, the library's retries included)."""
        return self._add(Rule(method, re.compile(key), times, skip=skip))

    def hold(self, method: str, key: str, times: int = 1) -> threading.Event:
        event = threading.Event()
        self._add(Rule(method, re.compile(key), times, event))
        return event

    def clear(self) -> None:
        with self._lock:
            for rule in self.rules:
                if rule.hold is not None:
                    rule.hold.set()
            self.rules.clear()

    def _add(self, rule: Rule) -> Rule:
        with self._lock:
            self.rules.append(rule)
        return rule

    def saw(self, test: Callable[[str, str, str], bool]) -> bool:
        with self._lock:
            return any(test(*request) for request in self.seen)

    def puts(self) -> list[str]:
        """The keys written so far (a PUT, or a multipart upload's start, parts and end), each once, in order."""
        with self._lock:
            return list(dict.fromkeys(path for method, path, _ in self.seen if method in ("PUT", "POST")))

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.takes(method, path):
                    if rule.times > 0:
                        rule.times -= 1
                    rule.hits += 1
                    return rule
        return None

    def _forward(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        with self._lock:
            self.seen.append((handler.command, parts.path, parts.query))
        rule = self._rule_for(handler.command, parts.path)
        if rule is not None and rule.hold is not None:
            rule.hold.wait(120)
        elif rule is not None:
            handler.send_response(500)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(FAILURE)))
            handler.end_headers()
            handler.wfile.write(FAILURE)
            return
        target = urlsplit(self.target)
        connection = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
        headers = {name: value for name, value in handler.headers.items()
                   if name.lower() not in HOP_BY_HOP and name.lower() != "expect"}
        connection.request(handler.command, handler.path, body=body, headers=headers)
        reply = connection.getresponse()
        data = reply.read()
        handler.send_response(reply.status, reply.reason)
        for name, value in reply.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                handler.send_header(name, value)
        # A HEAD's length is the object's, not of the (empty) body.
        handler.send_header("Content-Length", reply.getheader("Content-Length", "0") if handler.command == "HEAD"
                            else str(len(data)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(data)
        connection.close()
