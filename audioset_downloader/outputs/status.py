"""What a run tells a watcher, and --status: is a run going on, how far it is, how fast, until when.

A running CSV process writes X.status.json (atomically; on object storage, put up) at its start,
every HEARTBEAT_S from a timer of its own (an hour-long block finishes no clip, and must not look
like a dead run) and at its end: its pid, when it started, the clips finished so far with a
sample a minute of that count, and each identity's pace and block. --status reads that, the
manifests and the list, writing nothing and fetching nothing (on object storage it only reads the
store): whether a run holds the CSV's
lock (a killed run's lock is released with it, so a stale pid is not "running"; on object
storage, whether the heartbeat is fresh), clips written, failed by kind, invalid rows, windows
left to attempt, the rate over the last hour and since the start, and the time left at that rate.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from audioset_downloader.atomic import write_atomically
from audioset_downloader.errors import FailureReason
from audioset_downloader.fetch.mirrors.source import BACKEND as MIRRORED
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import BACKEND
from audioset_downloader.pacing.book import IdentityStats, duration_words
from audioset_downloader.pacing.learned import load_learned

HEARTBEAT_S = 10.0  # a small file: cheap enough to keep a watcher within seconds of the run
SAMPLE_EVERY_S = 60.0
KEPT_SAMPLES = 24 * 60  # a day of samples a minute: the last hour's rate, and the whole run's from the first
HOUR_S = 3600.0


@dataclass
class Heartbeat:
    """X.status.json: what a running CSV process says of itself."""

    pid: int
    started_utc: float  # epoch seconds
    updated_utc: float = 0.0
    running: bool = True
    finished: int = 0  # clips finished since the start (written or failed)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (epoch seconds, finished)
    identities: list[dict[str, Any]] = field(default_factory=list)  # IdentityStats, blocked_until_utc added

    def beat(self, finished: int, identities: list[IdentityStats], now: float) -> None:
        self.updated_utc, self.finished = now, finished
        if not self.samples or now - self.samples[-1][0] >= SAMPLE_EVERY_S:
            self.samples.append((now, finished))
            if len(self.samples) > KEPT_SAMPLES:  # keep the first: the rate since the start
                del self.samples[1:len(self.samples) - KEPT_SAMPLES + 1]
        self.identities = [{**asdict(entry), "blocked_until_utc": now + entry.blocked_for_s if entry.blocked_for_s
                            else None} for entry in identities]


class HeartbeatWriter:
    """Writes a CSV process's heartbeat now, every HEARTBEAT_S from its own thread, and at the end."""

    def __init__(self, outputs: CsvOutputs, finished: Callable[[], int],
                 identities: Callable[[], list[IdentityStats]],
                 written: Callable[[Path], None] | None = None) -> None:
        self._path = outputs.status
        self._written = written  # after each write: an OUTPUT_DIR on object storage puts the file up
        self._finished, self._identities = finished, identities
        self.heartbeat = Heartbeat(os.getpid(), time.time())
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def __enter__(self) -> HeartbeatWriter:
        self._write()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()
        self.heartbeat.running = False
        self._write()

    def _run(self) -> None:
        while not self._done.wait(HEARTBEAT_S):
            self._write()

    def _write(self) -> None:
        with contextlib.suppress(Exception):  # a watcher's file is never worth a run: a full disk says so elsewhere
            self.heartbeat.beat(self._finished(), self._identities(), time.time())
            write_atomically(self._path, json.dumps(asdict(self.heartbeat)) + "\n")
            if self._written is not None:
                self._written(self._path)


# ---------------------------------------------------------------- --status


def csv_status(outputs: CsvOutputs, listed: int, remote: bool = False) -> dict[str, Any]:
    """One CSV's figures (``listed``: the windows its list names). ``remote``: a copy of an OUTPUT_DIR on object
    storage, where no lock can be seen: a run is going on while its heartbeat is fresh."""
    written = _rows(outputs.split_pos)
    mirrored = _mirrored(outputs.split_pos)
    failed = _failed_by_reason(outputs.failed)
    invalid = failed.pop(FailureReason.INVALID_ROW.label, 0)
    for_good = sum(count for reason, count in failed.items()
                   if (kind := FailureReason.from_label(reason)) is not None and kind.permanent)
    beat = _heartbeat(outputs.status)
    running = _fresh(beat) if remote else _locked(outputs.lock)
    status: dict[str, Any] = {
        "csv": outputs.name, "running": running, "pid": beat.get("pid") if running else None,
        "written": written, "mirrored": mirrored, "failed": dict(sorted(failed.items())), "invalid_rows": invalid,
        "left": max(0, listed - written - for_good), "per_hour_last_hour": None, "per_hour_since_start": None,
        "eta_seconds": None, "started_utc": beat.get("started_utc"), "updated_utc": beat.get("updated_utc"),
        "identities": beat.get("identities", []),
    }
    samples = [tuple(sample) for sample in beat.get("samples", []) if isinstance(sample, list) and len(sample) == 2]
    if samples and isinstance(beat.get("finished"), int):
        last = (beat["updated_utc"], beat["finished"])
        status["per_hour_since_start"] = _per_hour((beat["started_utc"], 0), last)
        hour_ago = next((s for s in samples if s[0] >= last[0] - HOUR_S), samples[0])
        status["per_hour_last_hour"] = _per_hour(hour_ago, last)
        rate = status["per_hour_last_hour"] or status["per_hour_since_start"]
        if running and rate:
            status["eta_seconds"] = round(status["left"] / rate * HOUR_S)
    return status


def identity_status(output_dir: Path, csvs: list[dict[str, Any]], now: float | None = None) -> list[dict[str, Any]]:
    """Per identity: the running process's view (its pace, block, blocked until), else what runs learnt."""
    now = time.time() if now is None else now
    seen: dict[str, dict[str, Any]] = {}
    for status in csvs:
        if status["running"]:
            for entry in status["identities"]:
                seen.setdefault(entry["name"], entry)
    for name, learned in load_learned(output_dir).items():
        entry = seen.setdefault(name, {"name": name, "per_minute": learned.per_minute, "ceiling": learned.ceiling,
                                       "block_s": learned.block_s, "blocked_until_utc": None})
        entry.setdefault("blocks_so_far", learned.blocks)
        entry["block_s"] = entry.get("block_s") or learned.block_s
    for entry in seen.values():
        until = entry.get("blocked_until_utc")
        entry["blocked"] = bool(until and until > now)
    return sorted(seen.values(), key=lambda entry: entry["name"])


def status_lines(csvs: list[dict[str, Any]], identities: list[dict[str, Any]], now: float | None = None) -> list[str]:
    now = time.time() if now is None else now
    running = [f"{s['csv']} (pid {s['pid']})" for s in csvs if s["running"]]
    lines = [f"running: {', '.join(running)}" if running else "not running (no run holds these outputs)"]
    for s in csvs:
        failed = ", ".join(f"{reason} {count}" for reason, count in s["failed"].items()) or "none"
        rates = (f"{_rate(s['per_hour_last_hour'])} over the last hour, {_rate(s['per_hour_since_start'])} since "
                 f"the start" if s["per_hour_since_start"] is not None else "no rate yet")
        eta = f"; about {duration_words(s['eta_seconds'])} left at that rate" if s["eta_seconds"] else ""
        mirrored = f" ({s['mirrored']} from mirrors)" if s.get("mirrored") else ""
        lines.append(f"{s['csv']}: {s['written']} written{mirrored}, failed: {failed}, {s['invalid_rows']} invalid "
                     f"rows, {s['left']} left to attempt; {rates}{eta}")
    for entry in identities:
        pace = f"pace {entry['per_minute'] * 60:.0f} clips/h" if entry.get("per_minute") else "unpaced"
        block = f", blocks last {duration_words(entry['block_s'])}" if entry.get("block_s") else ""
        blocked = (f"; blocked until {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(entry['blocked_until_utc']))}"
                   f" (in {duration_words(entry['blocked_until_utc'] - now)})" if entry["blocked"] else "")
        lines.append(f"identity {entry['name']}: {pace}{block}{blocked}")
    return lines


def _rate(per_hour: float | None) -> str:
    return f"{per_hour:.0f} clips/h" if per_hour is not None else "no rate"


def _per_hour(first: tuple[float, int], last: tuple[float, int]) -> float | None:
    span = last[0] - first[0]
    return round((last[1] - first[1]) / span * HOUR_S, 1) if span >= 1 else None


def _rows(path: Path) -> int:
    """Data rows of a manifest, counted by newlines: a 2 M-row split-pos.csv in well under a second."""
    try:
        with open(path, "rb") as handle:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    except OSError:
        return 0
    return max(0, lines - 1)


def _mirrored(path: Path) -> int:
    """Rows of clips taken from a mirror's copy: a line's backend column is parsed only where it could say so."""
    marker = f",{MIRRORED},"
    count = 0
    with contextlib.suppress(OSError), open(path, newline="", encoding="utf-8", errors="replace") as handle:
        next(handle, None)
        for line in handle:
            if marker in line:
                row = next(csv.reader([line]), [])
                count += len(row) > BACKEND and row[BACKEND] == MIRRORED
    return count


def _failed_by_reason(path: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    with contextlib.suppress(OSError), open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) >= 4:
                counts[row[3]] += 1
    return counts


def _heartbeat(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("started_utc"), (int, float)) else {}


def heartbeat_running(outputs: CsvOutputs) -> bool:
    """Whether the CSV's heartbeat (a copy of one on object storage) says a run is going on now."""
    return _fresh(_heartbeat(outputs.status))


def _fresh(beat: dict[str, Any]) -> bool:
    """A heartbeat of a run still going: not its last one, and put up within three beats."""
    return bool(beat.get("running")) and time.time() - float(beat.get("updated_utc") or 0) < 3 * HEARTBEAT_S


def _locked(lock: Path) -> bool:
    """Whether a run holds the CSV's lock now (asked without taking it for long, and without writing)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        handle = open(lock)
    except OSError:
        return False  # no lock file: no run has ever held it
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
