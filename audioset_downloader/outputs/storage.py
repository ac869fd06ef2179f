"""The one seam between the outputs and object storage: an OUTPUT_DIR that is a URL (s3://, gs://...).

Object storage has no rename and no append: an object appears whole when its upload ends, or
not at all. So a run whose OUTPUT_DIR is a URL writes in a local stage folder exactly what a
local run writes, and everything that reaches the store goes through ``Store``: whole files
put, whole objects got, folders listed, objects removed. fsspec picks the library by the URL's
scheme (s3fs, gcsfs), which finds credentials and the endpoint as it always does (AWS_* variables
including AWS_ENDPOINT_URL, ~/.aws, instance roles); STORAGE_OPTIONS adds what they cannot say.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from audioset_downloader.atomic import partial_path
from audioset_downloader.errors import ConfigError, OutputUnwritableError, StoreError
from audioset_downloader.filesystems import first_line, open_filesystem, without_secrets
from audioset_downloader.inputs.settings import store_endpoint

log = logging.getLogger(__name__)

PROBE = ".audioset-downloader-probe"  # written and removed by the check before any clip is fetched
# Where a store's own exceptions come from (botocore's EndpointConnectionError is no OSError).
LIBRARIES = ("botocore", "aiobotocore", "aiohttp", "s3fs", "gcsfs", "google", "fsspec", "requests")
UPLOAD_PART = 8 << 20  # S3 takes parts of 5 MB and more
COPY_CHUNK = 1 << 20



@dataclass(frozen=True)
class ObjectInfo:
    """What a listing says of one object: enough to tell a copy is still the object, and how old it is."""

    size: int
    etag: str
    modified: float  # seconds since the epoch, the store's clock


class Store:
    """An OUTPUT_DIR on object storage; paths relative to it, as a local run's are to its folder."""

    def __init__(self, url: str, options: dict[str, Any] | None = None, setting: str = "OUTPUT_DIR") -> None:
        self.url = url.rstrip("/")
        self.options = dict(options or {})
        self.setting = setting  # the setting that names the URL, for every message about it
        self.scheme, _, self._root = self.url.partition("://")
        self._fs: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # Each process opens its own client, with its own machine's credentials: none travel.
        return {"url": self.url, "options": without_secrets(self.options), "setting": self.setting}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"], state["options"], state.get("setting", "OUTPUT_DIR"))  # type: ignore[misc]

    def __repr__(self) -> str:  # never the options: they may hold a secret
        return f"Store({self.url!r})"

    @property
    def named(self) -> str:
        """How messages name the store: the setting and its URL."""
        return f"{self.setting} {self.url}"

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs = open_filesystem(self.named, self.scheme, self.options)
        return self._fs

    def path(self, relative: str) -> str:
        return f"{self._root}/{relative}" if relative else self._root

    def check(self, write: bool = True) -> None:
        """Before any clip: the library is there, the bucket is, and it takes an object (a write, then its
        removal); ``write=False``: it can be listed. Whatever is wrong is one line naming the setting."""
        fs, probe, bucket = self.fs, self.path(PROBE), self._root.partition("/")[0]
        try:
            if write:
                fs.pipe_file(probe, b"")
                fs.rm_file(probe)
            else:
                fs.ls(bucket, detail=False, refresh=True)
        except FileNotFoundError:
            raise ConfigError(f"{self.named}: the bucket {bucket!r} does not exist; create it, or fix the URL "
                              "(and AWS_ENDPOINT_URL if not on AWS)") from None
        except PermissionError as exc:
            raise ConfigError(f"{self.named}: credentials refused ({first_line(exc)}); set AWS_ACCESS_KEY_ID and "
                              "AWS_SECRET_ACCESS_KEY (or ~/.aws, or STORAGE_OPTIONS) to ones that may "
                              f"{'write' if write else 'read'} there") from None
        except TypeError as exc:  # the library takes its options only when it first connects
            raise ConfigError(f"STORAGE_OPTIONS: {first_line(exc)}; give only options {self.scheme}'s library "
                              "takes") from None
        except Exception as exc:
            if "credential" in type(exc).__name__.lower():  # botocore's NoCredentialsError and kin are no OSError
                raise ConfigError(f"{self.named}: no credentials found ({first_line(exc)}); set AWS_ACCESS_KEY_ID "
                                  "and AWS_SECRET_ACCESS_KEY (or ~/.aws, or STORAGE_OPTIONS)") from None
            if not isinstance(exc, OSError) and not type(exc).__module__.startswith(LIBRARIES):
                raise
            # A wrong endpoint, a dead network: after the library's own retries, one line.
            raise ConfigError(f"{self.named}: the store does not answer ({first_line(exc)}); check the URL, "
                              f"the endpoint ({self.endpoint or 'the default'}: AWS_ENDPOINT_URL or "
                              "STORAGE_OPTIONS' endpoint_url) and the network") from None

    @property
    def endpoint(self) -> str:
        return store_endpoint(self.url, self.options)

    def put_file(self, local: Path, relative: str) -> None:
        """Upload ``local`` as one object: it appears whole when the upload ends, or not at all."""
        with open(local, "rb") as source, self.writer(relative) as target:
            shutil.copyfileobj(source, target, COPY_CHUNK)

    @contextlib.contextmanager
    def writer(self, relative: str) -> Iterator[BinaryIO]:
        """An object written as a stream, in parts of UPLOAD_PART (a multipart upload on S3: a shard of a
        gigabyte costs a part's memory). It appears whole when the block ends, and not at all if it raises:
        fsspec's own context manager would commit what was written so far, so the upload is discarded here."""
        with self._asking("put up", relative):
            target = self.fs.open(self.path(relative), "wb", block_size=UPLOAD_PART)
            try:
                yield target
            except BaseException:
                with contextlib.suppress(Exception):  # a store that is gone takes no abort either
                    target.discard()
                target.closed = True  # else fsspec's __del__ would close it: commit, or fail on the discarded buffer
                raise
            target.close()

    @contextlib.contextmanager
    def _asking(self, what: str, relative: str) -> Iterator[None]:
        """One line for a store that refuses or does not answer, whatever library said so."""
        try:
            yield
        except PermissionError as exc:
            raise OutputUnwritableError(f"{self.named}: the store refused to {what} {relative} "
                                        f"({first_line(exc)}); fix the credentials, then rerun: finished clips "
                                        "are kept") from exc
        except (FileNotFoundError, FileExistsError):
            raise  # not there, or there already: the caller's answer, not the store's failure
        except Exception as exc:
            if not isinstance(exc, OSError) and not type(exc).__module__.startswith(LIBRARIES):
                raise
            raise StoreError(f"{self.named}: could not {what} {relative} ({first_line(exc)}); rerun once "
                             "the store answers: finished clips are kept") from exc

    def put_text(self, relative: str, text: str) -> None:
        with self.writer(relative) as target:
            target.write(text.encode("utf-8"))

    def get_file(self, relative: str, local: Path) -> bool:
        """Download an object to ``local`` (complete before it has its name); False when there is none."""
        temp = partial_path(local)
        try:
            with self._asking("get", relative):
                self.fs.get_file(self.path(relative), str(temp))
        except FileNotFoundError:
            temp.unlink(missing_ok=True)
            return False
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, local)
        return True

    def get_text(self, relative: str) -> str | None:
        try:
            with self._asking("get", relative):
                return self.fs.cat_file(self.path(relative)).decode("utf-8")
        except FileNotFoundError:
            return None

    def names(self, folder: str) -> set[str]:
        """The objects directly in ``folder``, by name: one listing, never a cached one."""
        try:
            with self._asking("list", folder or "the top folder"):
                entries = self.fs.ls(self.path(folder), detail=False, refresh=True)
        except FileNotFoundError:
            return set()
        prefix = self.path(folder).rstrip("/") + "/"
        return {entry.rstrip("/")[len(prefix):] for entry in entries if entry.startswith(prefix)}

    def listing(self, folder: str) -> dict[str, ObjectInfo]:
        """The objects directly in ``folder``, by name, with their size, ETag and age: one listing."""
        try:
            with self._asking("list", folder or "the top folder"):
                entries = self.fs.ls(self.path(folder), detail=True, refresh=True)
        except FileNotFoundError:
            return {}
        prefix = self.path(folder).rstrip("/") + "/"
        return {entry["name"][len(prefix):]: _info(entry) for entry in entries
                if entry.get("type") == "file" and entry["name"].startswith(prefix)}

    def info(self, relative: str) -> ObjectInfo | None:
        """One object's size, ETag and age; None when there is none."""
        try:
            with self._asking("look at", relative):
                return _info(self.fs.info(self.path(relative), refresh=True))
        except FileNotFoundError:
            return None

    def create(self, relative: str, data: bytes) -> bool:
        """Put ``data`` up only if no object has that name (S3's If-None-Match); False if one has."""
        try:
            with self._asking("put up", relative):
                if self.scheme in ("s3", "s3a"):
                    self.fs.pipe_file(self.path(relative), data, mode="create")
                    return True
                # A store without conditional writes here: look, then put (a race narrower than a run's start).
                if self.fs.exists(self.path(relative)):
                    return False
                self.fs.pipe_file(self.path(relative), data)
                return True
        except FileExistsError:
            return False

    def replace_if(self, relative: str, data: bytes, etag: str) -> bool:
        """Put ``data`` over the object only while it is still the one whose ETag is ``etag`` (S3's If-Match);
        False if another writer changed it first."""
        try:
            with self._asking("put up", relative):
                if self.scheme in ("s3", "s3a"):
                    self.fs.pipe_file(self.path(relative), data, IfMatch=etag)
                else:
                    self.fs.pipe_file(self.path(relative), data)
                return True
        except StoreError as exc:
            if "pre-condition" in str(exc).lower() or "precondition" in str(exc).lower():
                return False
            raise
        except FileNotFoundError:
            return False

    def exists(self, relative: str) -> bool:
        with self._asking("look at", relative):
            return bool(self.fs.exists(self.path(relative)))

    def remove(self, relatives: list[str]) -> None:
        if relatives:
            with self._asking("remove", relatives[0] + (f" and {len(relatives) - 1} more" if relatives[1:] else "")):
                self.fs.rm([self.path(relative) for relative in relatives])


def _info(entry: dict[str, Any]) -> ObjectInfo:
    modified = entry.get("LastModified") or entry.get("updated") or entry.get("mtime")
    if isinstance(modified, str):
        modified = datetime.fromisoformat(modified.replace("Z", "+00:00"))
    if isinstance(modified, datetime):
        stamp = (modified if modified.tzinfo else modified.replace(tzinfo=timezone.utc)).timestamp()
    else:
        stamp = float(modified or 0.0)
    return ObjectInfo(int(entry.get("size") or 0), str(entry.get("ETag") or entry.get("etag") or
                                                     entry.get("md5Hash") or ""), stamp)
