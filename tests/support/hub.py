"""A stand-in for the Hugging Face Hub's read API, on 127.0.0.1, reached by huggingface_hub's own client.

It answers what HfFileSystem asks (../shared/mirrors/README.md): repo info (``/api/datasets/{repo}``
and ``/revision/{rev}``), the tree listing, ``paths-info``, and ``resolve`` with Range (206). Each
repo is a folder at one or more revisions; a gated repo answers 401 to a request without a token,
a missing repo 404 with ``X-Error-Code: RepoNotFound``, a missing revision ``RevisionNotFound``, as
the Hub does. Built on MediaServer, so bytes and requests are counted per path and the wire can be
throttled to a bandwidth.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote

from tests.support.server import CHUNK, HANDLED, Handler, MediaServer, Reply

_API = re.compile(r"^/api/datasets/([^/]+/[^/]+)(?:/(revision|tree|paths-info)/([^/]+)(/.*)?)?$")
_RESOLVE = re.compile(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")
JSON = (("Content-Type", "application/json"),)


@dataclass
class _Repo:
    revisions: dict[str, Path] = field(default_factory=dict)  # commit sha -> folder
    branches: dict[str, str] = field(default_factory=dict)  # branch or tag -> sha
    gated: bool = False


class Wire:
    """One link's bandwidth, shared by every connection (MediaServer's own limit is per connection)."""

    def __init__(self, bytes_per_s: float) -> None:
        self.bytes_per_s = bytes_per_s
        self._lock = threading.Lock()
        self._free = time.monotonic()

    def take(self, size: int) -> None:
        with self._lock:
            now = time.monotonic()
            self._free = max(now, self._free) + size / self.bytes_per_s
            wait = self._free - now - size / self.bytes_per_s  # this chunk goes once the ones before it have
        if wait > 0:
            time.sleep(wait)


class FakeHub:
    def __init__(self, bandwidth_bps: float | None = None, latency_s: float = 0.0,
                 wire_bps: float | None = None) -> None:
        """``bandwidth_bps``: each connection's limit; ``wire_bps``: the whole link's, shared (bytes a second)."""
        self.server = MediaServer(Path("/nonexistent"), latency_s=latency_s, bandwidth_bps=bandwidth_bps)
        self.wire = Wire(wire_bps) if wire_bps else None
        self.server.routes.append(self._route)
        self.repos: dict[str, _Repo] = {}
        self.tokens_seen: list[str] = []
        self.reads: list[tuple[str, str]] = []  # (path in the repo, Range header) of each resolve request

    def __enter__(self) -> FakeHub:
        self.server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)

    @property
    def endpoint(self) -> str:
        return self.server.base_url

    def add(self, repo: str, folder: Path, branch: str = "main", gated: bool = False) -> str:
        """Publish ``folder`` as ``repo`` at a new commit on ``branch``; returns the commit's sha."""
        listing = sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())
        sha = hashlib.sha1(json.dumps([repo, branch, listing]).encode()).hexdigest()
        entry = self.repos.setdefault(repo, _Repo())
        entry.revisions[sha] = folder
        entry.branches[branch] = sha
        entry.gated = entry.gated or gated
        return sha

    def resolve_requests(self, repo: str) -> dict[str, int]:
        """Requests for each file's bytes (``resolve``), by path in the repo."""
        out: dict[str, int] = {}
        for path, count in self.server.requests.items():
            match = _RESOLVE.match(path)
            if match and match.group(1) == repo:
                out[match.group(3)] = out.get(match.group(3), 0) + count
        return out

    def bytes_sent(self, repo: str) -> int:
        return sum(sent for path, sent in self.server.bytes_sent.items()
                   if (match := _RESOLVE.match(path)) and match.group(1) == repo)

    def api_requests(self) -> int:
        return sum(count for path, count in self.server.requests.items() if path.startswith("/api/"))

    # ------------------------------------------------------------ serving

    def _route(self, handler: Handler) -> Reply | None:
        path = unquote(handler.url_path)
        api, resolve = _API.match(path), _RESOLVE.match(path)
        if api is None and resolve is None:
            return Reply(404, b"not found")
        repo_id = (api or resolve).group(1)  # type: ignore[union-attr]
        auth = handler.headers.get("Authorization", "")
        if auth:
            self.tokens_seen.append(auth)
        repo = self.repos.get(repo_id)
        if repo is None:
            return _error(404, "RepoNotFound", "Repository not found")
        if repo.gated and not auth.startswith("Bearer "):
            return _error(401, "GatedRepo", f"Access to dataset {repo_id} is restricted. You must have access "
                                            "to it and be authenticated to access it. Please log in.")
        if resolve is not None:
            folder = self._folder(repo, resolve.group(2))
            if folder is None:
                return _error(404, "RevisionNotFound", "Invalid rev id")
            target = (folder / resolve.group(3)).resolve()
            if folder.resolve() not in target.parents or not target.is_file():
                return _error(404, "EntryNotFound", "Entry not found")
            with self.server._lock:
                self.reads.append((resolve.group(3), handler.headers.get("Range", "")))
            send_ranged(handler, target, self.wire)
            return HANDLED
        kind, revision, rest = api.group(2), api.group(3) or "main", (api.group(4) or "").lstrip("/")  # type: ignore
        folder = self._folder(repo, revision)
        if folder is None:
            return _error(404, "RevisionNotFound", "Invalid rev id")
        sha = repo.branches.get(revision, revision)
        if kind in (None, "revision"):
            siblings = [{"rfilename": str(p.relative_to(folder))} for p in sorted(folder.rglob("*")) if p.is_file()]
            body = {"id": repo_id, "sha": sha, "private": False, "gated": "auto" if repo.gated else False,
                    "disabled": False, "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
                    "lastModified": "2023-03-01T00:00:00.000Z", "createdAt": "2023-03-01T00:00:00.000Z"}
            return Reply(200, json.dumps(body).encode(), JSON)
        if kind == "tree":
            recursive = parse_qs(handler.query).get("recursive", ["false"])[0].lower() == "true"
            base = folder / rest
            if not base.is_dir():
                return _error(404, "EntryNotFound", f"{rest} does not exist")
            entries = base.rglob("*") if recursive else base.iterdir()
            return Reply(200, json.dumps([_entry(folder, p) for p in sorted(entries)]).encode(), JSON)
        form = parse_qs(getattr(handler, "body", b"").decode())  # paths-info: form fields "paths"
        paths = form.get("paths", [])
        if not paths and getattr(handler, "body", b"").startswith(b"{"):
            paths = json.loads(handler.body).get("paths", [])
        found = [_entry(folder, folder / p) for p in paths if (folder / p).exists()]
        return Reply(200, json.dumps(found).encode(), JSON)

    def _folder(self, repo: _Repo, revision: str) -> Path | None:
        return repo.revisions.get(repo.branches.get(revision, revision))


def send_ranged(handler: Handler, target: Path, wire: Wire | None = None) -> None:
    """``target``'s bytes, honouring Range, through the link's shared limit (or the connection's own)."""
    data = target.read_bytes()

    def on_the_wire(body: bytes) -> None:
        assert wire is not None
        try:
            for offset in range(0, len(body), CHUNK):
                chunk = body[offset: offset + CHUNK]
                wire.take(len(chunk))
                handler.wfile.write(chunk)
                handler.media.count(handler.url_path, sent=len(chunk))
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True

    handler.send_bytes(data, "application/octet-stream", handler.command != "HEAD",
                       headers=(("ETag", f'"{hashlib.sha1(data).hexdigest()}"'),),
                       write=on_the_wire if wire is not None else None)


def _entry(root: Path, path: Path) -> dict:
    relative = str(path.relative_to(root))
    if path.is_dir():
        return {"type": "directory", "oid": hashlib.sha1(relative.encode()).hexdigest(), "path": relative}
    return {"type": "file", "oid": hashlib.sha1(f"{relative} {path.stat().st_size}".encode()).hexdigest(),
            "size": path.stat().st_size, "path": relative}


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, json.dumps({"error": message}).encode(),
                 (*JSON, ("X-Error-Code", code), ("X-Error-Message", message)))
