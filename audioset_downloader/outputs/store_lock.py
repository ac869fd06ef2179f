"""One driver per OUTPUT_DIR on object storage: a lock object on the store itself.

Two drivers on one URL would each fetch every window and overwrite each other's manifests; the
local lock (a file in the stage folder) cannot see a driver on another machine. So the driver
(and every command that changes the outputs) creates ``.audioset-downloader.lock`` at the URL with
S3's conditional write (If-None-Match: the store refuses it if the object exists), and refreshes
it every REFRESH_S with If-Match on its own ETag. A second driver reads who holds it and stops in
one line. A lock not refreshed for STALE_S (its driver was killed, or lost the store), or held on
this machine by a process that is gone, is taken over (If-Match again: of two drivers taking it
over at once, one wins), and the log says so.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from audioset_downloader.errors import DownloaderError, OutputLockedError
from audioset_downloader.outputs.storage import Store
from audioset_downloader.processes import gone_here, this_process

log = logging.getLogger(__name__)

LOCK = ".audioset-downloader.lock"
REFRESH_S = 30.0
STALE_S = 300.0  # ten refreshes missed: its driver is gone
TRIES = 3  # the lock changed hands between our look and our write this often, at most


@dataclass(frozen=True)
class Holder:
    """Who holds the lock, as its object says."""

    host: str
    pid: int
    run: str
    started: float

    def words(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, since {since}"


class StoreLock:
    """This driver's hold on a URL, while it lasts."""

    def __init__(self, store: Store, command: str) -> None:
        self.store = store
        self.me = Holder(*this_process(), uuid.uuid4().hex, time.time())
        self.command = command
        self._etag = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _body(self) -> bytes:
        return (json.dumps({**self.me.__dict__, "command": self.command, "refreshed": time.time()}) + "\n").encode()

    def acquire(self) -> None:
        for _ in range(TRIES):
            if self.store.create(LOCK, self._body()):
                break
            held = self._read()
            if held is None:
                continue  # released between the two looks
            holder, age, etag = held
            if not self._gone(holder, age):
                raise OutputLockedError(
                    f"{self.store.named}: another run is writing these outputs ({holder.words()}, its lock refreshed "
                    f"{age:.0f} s ago); wait for it to finish or stop it (a lock not refreshed for "
                    f"{STALE_S / 60:.0f} minutes is taken over)")
            if self.store.replace_if(LOCK, self._body(), etag):
                log.warning("%s: took over the lock of %s, whose run is gone (lock %.0f s old)", self.store.named,
                            holder.words(), age)
                break
        else:
            raise OutputLockedError(f"{self.store.named}: the lock changed hands {TRIES} times while this run "
                                    "tried to take it; another run is starting there: wait, then rerun")
        info = self.store.info(LOCK)
        self._etag = info.etag if info is not None else ""
        self._thread = threading.Thread(target=self._refresh, name="store-lock", daemon=True)
        self._thread.start()

    def _read(self) -> tuple[Holder, float, str] | None:
        info = self.store.info(LOCK)
        text = self.store.get_text(LOCK) if info is not None else None
        if info is None or text is None:
            return None
        try:
            fields = json.loads(text)
            holder = Holder(str(fields["host"]), int(fields["pid"]), str(fields["run"]), float(fields["started"]))
        except (ValueError, KeyError, TypeError):
            holder = Holder("an unknown host", 0, "", info.modified)  # not ours to read: judged by its age alone
        return holder, max(0.0, time.time() - info.modified), info.etag

    def _gone(self, holder: Holder, age: float) -> bool:
        if age > STALE_S:
            return True
        # Killed on this machine, or an earlier run of this very process that could not remove it (the store was
        # away as it ended; one process drives one run at a time): no need to wait for it to grow old.
        return gone_here(holder.host, holder.pid) or (holder.host, holder.pid) == (self.me.host, self.me.pid)

    def _refresh(self) -> None:
        while not self._stop.wait(REFRESH_S):
            try:
                if not self.store.replace_if(LOCK, self._body(), self._etag):
                    log.error("%s: another run took this run's lock over (it was not refreshed for %.0f s); stop one "
                              "of them", self.store.named, STALE_S)
                    return
                info = self.store.info(LOCK)
                self._etag = info.etag if info is not None else self._etag
            except DownloaderError as exc:  # the store is away for now: the run finds out at its next object
                log.warning("could not refresh the lock: %s", exc)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = self._read()
        if held is not None and held[0].run == self.me.run:
            self.store.remove([LOCK])


@contextlib.contextmanager
def holding(store: Store, command: str) -> Iterator[StoreLock]:
    """The URL's lock for the block: refused in one line while another live run holds it."""
    lock = StoreLock(store, command)
    lock.acquire()
    try:
        yield lock
    finally:
        with contextlib.suppress(DownloaderError):  # a store that is gone: the lock grows old, and is taken over
            lock.release()
