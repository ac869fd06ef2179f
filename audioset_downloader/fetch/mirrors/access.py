"""Reaching a mirror's files: a Hub repo (hf://), object storage (s3://, gs://) or a local folder.

Everything a layout reads goes through ``MirrorAccess``: a listing, and exact ranged reads, each
one request for the bytes asked and no more (no read-ahead cache: a 1-in-50 list must not pull a
block of neighbours per clip). A Hub repo is read through huggingface_hub's HfFileSystem, which
honours HF_TOKEN and HF_ENDPOINT as huggingface_hub always does, pinned to the commit its revision
names when opened, so a repo pushed to mid-run reads the same. Every byte read is counted, for the
summary's bandwidth and the benchmark's bytes per clip.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audioset_downloader.errors import ConfigError
from audioset_downloader.filesystems import first_line, open_filesystem
from audioset_downloader.inputs.settings import MirrorSpec

MIRRORS_EXTRA = 'pip install -e ".[mirrors]"'


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the mirror's root, "/"-separated
    size: int


class MirrorAccess:
    """One mirror's files, at one revision: ``revision`` names what was read (a commit, or a listing's digest)."""

    def __init__(self, spec: MirrorSpec, setting: str, storage_options: dict[str, Any], commit: str | None = None
                 ) -> None:
        self.spec = spec
        self.setting = setting  # "MIRRORS[0]": how messages name it
        self._lock = threading.Lock()
        self.bytes_read = 0
        self.requests = 0
        self.commit = commit  # a Hub repo's commit sha; given: the revision is not asked again (a Dask worker)
        self.storage_options = storage_options
        self.cache: Path | None = None  # the folder of its index (fetch/mirrors/index.py): what a layout keeps of it
        if spec.is_hub:
            self.fs, self.root, self.commit = _open_hub(spec, setting, commit)
            # root: "datasets/owner/name@commit[/folder]"
            self._repo, _, rest = self.root[len("datasets/"):].partition("@")
            self._folder = rest.partition("/")[2]
        elif "://" in spec.url:
            scheme, _, rest = spec.url.partition("://")
            self.fs = open_filesystem(f"{setting} {spec.url}", scheme, storage_options)
            self.root = rest.rstrip("/")
        else:
            self.fs, self.root = None, os.path.abspath(spec.url)
            if not os.path.isdir(self.root):
                raise ConfigError(f"{setting}: {spec.url} is not a folder; name a folder holding a copy, a Hub "
                                  "repo (hf://datasets/owner/name) or s3://bucket/prefix")

    @property
    def named(self) -> str:
        return f"{self.setting} {self.spec.url}"

    def listing(self) -> list[FileEntry]:
        """Every file under the root, with its size: the cheapest look at what a mirror holds."""
        try:
            if self.fs is None:
                found = []
                for folder, _, names in os.walk(self.root):
                    for name in names:
                        full = os.path.join(folder, name)
                        found.append(FileEntry(os.path.relpath(full, self.root).replace(os.sep, "/"),
                                               os.path.getsize(full)))
                return sorted(found, key=lambda entry: entry.path)
            details = self.fs.find(self.root, detail=True)
        except FileNotFoundError:
            raise ConfigError(f"{self.named}: no such folder in the mirror; fix the URL's path") from None
        except (PermissionError, OSError) as exc:
            raise ConfigError(f"{self.named}: cannot list it ({first_line(exc)}); check the URL and credentials "
                              "(HF_TOKEN for a gated repo, STORAGE_OPTIONS or AWS_* for a bucket)") from None
        prefix = self.root.rstrip("/") + "/"
        return sorted((FileEntry(name[len(prefix):], int(info.get("size") or 0))
                       for name, info in details.items() if info.get("type") == "file" and name.startswith(prefix)),
                      key=lambda entry: entry.path)

    def read(self, path: str, start: int, end: int, size: int) -> bytes:
        """Bytes [start, end) of ``path`` (``size`` long): one ranged request."""
        full = f"{self.root}/{path}"
        if self.fs is None:
            with open(full, "rb") as handle:
                handle.seek(start)
                data = handle.read(end - start)
        elif self.spec.is_hub:
            data = self._hub_range(path, start, end)
        else:
            data = self.fs.cat_file(full, start=start, end=end)
        self.count(len(data))
        return data

    def _hub_range(self, path: str, start: int, end: int) -> bytes:
        """One GET of the file's ``resolve`` URL at the commit, with its Range, through huggingface_hub's own
        client (its retries, its token): HfFileSystem's files would first ask the repo's info and its folder's
        listing, again in every process."""
        from huggingface_hub import hf_hub_url
        from huggingface_hub.utils import build_hf_headers, hf_raise_for_status, http_backoff

        in_repo = f"{self._folder}/{path}" if self._folder else path
        url = hf_hub_url(self._repo, in_repo, repo_type="dataset", revision=self.commit, endpoint=self.fs.endpoint)
        response = http_backoff("GET", url, headers={**build_hf_headers(), "Range": f"bytes={start}-{end - 1}"})
        hf_raise_for_status(response)
        return response.content

    def count(self, size: int) -> None:
        with self._lock:
            self.bytes_read += size
            self.requests += 1

    def ranged(self, entry: FileEntry) -> RangedFile:
        return RangedFile(self, entry)

    def fingerprint(self, entries: list[FileEntry]) -> str:
        """What names this copy's contents for the index cache: the commit, else its files and sizes."""
        if self.commit is not None:
            return self.commit
        digest = hashlib.sha256("\n".join(f"{e.path} {e.size}" for e in entries).encode()).hexdigest()
        return f"listing-{digest[:20]}"


class RangedFile(io.RawIOBase):
    """A mirror's file as a seekable file whose every read is one exact ranged read (pyarrow, tarfile)."""

    def __init__(self, access: MirrorAccess, entry: FileEntry) -> None:
        self._access, self._entry, self._pos = access, entry, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._entry.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        end = self._entry.size if size is None or size < 0 else min(self._entry.size, self._pos + size)
        if end <= self._pos:
            return b""
        data = self._access.read(self._entry.path, self._pos, end, self._entry.size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    @property
    def size(self) -> int:
        return self._entry.size


def _open_hub(spec: MirrorSpec, setting: str, commit: str | None) -> tuple[Any, str, str]:
    """HfFileSystem, the root path pinned to the revision's commit, and the commit."""
    named = f"{setting} {spec.url}"
    try:
        from huggingface_hub import HfApi, HfFileSystem
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError
    except ImportError:
        raise ConfigError(f"{named}: a Hub mirror needs huggingface-hub, which is not installed; install it "
                          f"with: {MIRRORS_EXTRA}") from None
    owner, _, rest = spec.url[len("hf://datasets/"):].partition("/")
    name, _, folder = rest.partition("/")  # settings allow no "/" in a revision given in the URL
    name, _, revision_in_url = name.partition("@")
    repo = f"{owner}/{name}"
    revision = spec.revision or revision_in_url or "main"
    endpoint = os.environ.get("HF_ENDPOINT") or None  # read now: huggingface_hub read it at its import
    try:
        commit = commit or HfApi(endpoint=endpoint).dataset_info(repo, revision=revision).sha
    except GatedRepoError:
        raise ConfigError(f"{named}: the repo is gated; accept its terms on the Hub, then set HF_TOKEN to a token "
                          "of that account (huggingface-cli login stores one too)") from None
    except RevisionNotFoundError:
        raise ConfigError(f"{named}: the repo has no revision {revision!r}; name a branch, tag or commit it has "
                          "(its revision setting, or @revision in the URL)") from None
    except RepositoryNotFoundError:
        raise ConfigError(f"{named}: no such dataset repo on {endpoint or 'the Hub'} (or it is private: set "
                          "HF_TOKEN); fix the owner/name") from None
    except Exception as exc:  # the Hub does not answer
        raise ConfigError(f"{named}: the Hub does not answer ({first_line(exc)}); check the network and "
                          "HF_ENDPOINT") from None
    if commit is None:
        raise ConfigError(f"{named}: the Hub named no commit for revision {revision!r}; name a commit instead")
    fs = HfFileSystem(endpoint=endpoint, skip_instance_cache=True)
    root = f"datasets/{repo}@{commit}" + (f"/{folder.strip('/')}" if folder.strip("/") else "")
    return fs, root, commit
