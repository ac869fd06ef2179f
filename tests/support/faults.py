"""Faults the local server can inject, per path, for reliability tests.

``Faults.set("/id.m4a", "reset")`` makes every request for that path misbehave:
an HTTP status, a connection reset mid-body, a body cut short, a stall, or a
status for the first N requests only (``Fault(429, times=3)``), after which the
file is served normally.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass

from .server import HANDLED, Handler, MediaServer, Reply

PART = 32 * 1024  # bytes sent before a reset, truncation or stall


@dataclass
class Fault:
    kind: int | str  # an HTTP status, or "reset", "truncate", "stall"
    times: int | None = None  # only the first N requests; None: every request


class Faults:
    def __init__(self, server: MediaServer) -> None:
        self.server = server
        self.plan: dict[str, Fault] = {}
        self.everywhere: Fault | None = None  # applies to every path not in the plan
        self.seen: list[tuple[float, str]] = []  # (monotonic time, path) of every request
        self.struck: Counter[str] = Counter()  # requests that met their fault, per path
        self.release = threading.Event()  # ends every stall
        self._lock = threading.Lock()
        server.routes.insert(0, self.route)

    def set(self, path: str, fault: Fault | int | str) -> None:
        self.plan[path] = fault if isinstance(fault, Fault) else Fault(fault)

    def route(self, handler: Handler) -> Reply | None:
        with self._lock:
            self.seen.append((time.monotonic(), handler.url_path))
            fault = self.plan.get(handler.url_path, self.everywhere)
            if fault is None:
                return None
            if fault.times is not None:
                if fault.times <= 0:
                    return None
                fault.times -= 1
            self.struck[handler.url_path] += 1
        if isinstance(fault.kind, int):
            return Reply(fault.kind, b"fault")
        self._misbehave(handler, fault.kind)
        return HANDLED

    def _misbehave(self, handler: Handler, kind: str) -> None:
        path = self.server.root / handler.url_path.lstrip("/")
        size = path.stat().st_size
        handler.send_response(200)
        handler.send_header("Content-Type", "audio/mp4")
        handler.send_header("Content-Length", str(size))
        handler.end_headers()
        handler.wfile.write(path.read_bytes()[:PART])
        handler.wfile.flush()
        handler.close_connection = True
        if kind == "stall":
            self.release.wait(60)
        elif kind == "reset":  # close with RST instead of FIN
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # "truncate": the connection closes normally, short of Content-Length.
