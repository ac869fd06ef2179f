"""A SOCKS5 proxy on 127.0.0.1 (RFC 1928, optional RFC 1929 sign-in) for SOCKS identity tests.

Its outgoing connections leave from a loopback address of its own (127.0.0.2, ...),
so the server behind it sees each proxy as a different address, as YouTube sees
different proxies. It counts the connections it opened and can refuse every one.
"""

from __future__ import annotations

import select
import socket
import socketserver
import threading


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        server: SocksServer = self.server.owner  # type: ignore[attr-defined]
        _, count = _read(client, 2)
        methods = _read(client, count)
        if server.credentials:
            if 2 not in methods:
                client.sendall(b"\x05\xff")
                return
            client.sendall(b"\x05\x02")
            _read(client, 1)
            user = _read(client, _read(client, 1)[0]).decode()
            password = _read(client, _read(client, 1)[0]).decode()
            ok = (user, password) == server.credentials
            client.sendall(b"\x01" + (b"\x00" if ok else b"\x01"))
            if not ok:
                return
        else:
            client.sendall(b"\x05\x00")
        _, command, _, kind = _read(client, 4)
        if kind == 1:
            host = socket.inet_ntoa(_read(client, 4))
        elif kind == 3:
            host = _read(client, _read(client, 1)[0]).decode()
            server.names.append(host)
        else:
            host = socket.inet_ntop(socket.AF_INET6, _read(client, 16))
        port = int.from_bytes(_read(client, 2), "big")
        if command != 1 or server.refuse:
            client.sendall(b"\x05\x02\x00\x01" + bytes(6))  # not allowed by its rules
            return
        try:
            upstream = socket.create_connection((host, port), timeout=10, source_address=(server.source, 0))
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            return
        server.connections += 1
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton(server.source) + b"\x00\x00")
        with upstream:
            peers = {client: upstream, upstream: client}
            while True:
                readable, _, _ = select.select(list(peers), [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("client went away")
        data += chunk
    return data


class SocksServer:
    def __init__(self, source: str, credentials: tuple[str, str] | None = None) -> None:
        self.source = source  # the loopback address its connections leave from
        self.credentials = credentials
        self.refuse = False
        self.connections = 0
        self.names: list[str] = []  # host names it was asked to resolve (socks5h)
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, scheme: str = "socks5") -> str:
        login = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"{scheme}://{login}127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> SocksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
