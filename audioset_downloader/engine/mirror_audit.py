"""MIRROR_AUDIT: before a list's windows are taken from a mirror, N of them are fetched from YouTube too.

Each pair is measured (fetch/mirrors/audit.py) in a scratch folder, so the run's outputs are not
touched: the YouTube clip is cut through the backends with a turn of the pacing book like any other,
the copy converted as a mirror clip is. Measurements are kept in CACHE_DIR by mirror and revision,
so a copy already measured is not fetched again by the next list or the next run; a mirror whose
copies are not the windows is dropped for the run with one warning.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from audioset_downloader.atomic import write_atomically
from audioset_downloader.engine.worker import ClipWorker
from audioset_downloader.fetch.cutter import find_ffmpeg
from audioset_downloader.fetch.mirrors.audit import MAX_OFFSET_MS, Agreement, compare, verdict
from audioset_downloader.fetch.mirrors.source import Mirror, Mirrors
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.layout import CsvOutputs

log = logging.getLogger(__name__)

TRIES_PER_WINDOW = 3  # windows tried per window measured: a video gone from YouTube measures nothing


def audit_mirrors(worker: ClipWorker, mirrors: Mirrors, segments: Iterable[Segment], stop: threading.Event
                  ) -> list[dict[str, Any]]:
    """Measure each mirror (up to MIRROR_AUDIT windows, from ``segments``), drop the ones that are off; the
    summary's account of each."""
    wanted = worker.settings.mirror_audit
    if not wanted:
        return []
    store = worker.settings.cache_folder / "mirrors" / "audits.json"
    measured = _load(store)
    tries = {mirror.number: 0 for mirror in mirrors.mirrors}
    held_any: set[int] = set()

    def wanting() -> list[Mirror]:
        return [mirror for mirror in mirrors.mirrors if len(measured.get(mirror.label, {})) < wanted
                and tries[mirror.number] < wanted * TRIES_PER_WINDOW]

    # One pass over the list, stopped as soon as no mirror wants a measurement more (at once, when the cache
    # has them all): a list of two million windows is not held in memory for it.
    for segment in segments if wanting() else ():
        if stop.is_set() or not wanting():
            break
        for mirror, _ in mirrors.held(segment):
            held_any.add(mirror.number)
            known = measured.setdefault(mirror.label, {})
            if mirror not in wanting() or segment.ytid in known:
                continue
            tries[mirror.number] += 1
            agreement = _measure(worker, mirrors, mirror, segment, stop)
            if agreement is not None:
                known[segment.ytid] = asdict(agreement)
                store.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(store, json.dumps(measured, indent=1) + "\n")
    accounts = []
    for mirror in mirrors.mirrors:
        known = measured.get(mirror.label, {})
        if not known and mirror.number not in held_any:
            continue  # it holds none of this list's windows
        agreements = [Agreement(**entry) for entry in known.values()]
        keep = verdict(agreements)
        accounts.append(_account(mirror, agreements, keep))
        if not keep:
            mirrors.dropped.add(mirror.number)
            log.warning("%s (%s) dropped for this run: %d of the %d copies measured against YouTube start over "
                        "%g ms away from their window (median offset %.0f ms); its windows are fetched instead",
                        mirror.setting, mirror.label, sum(a.off for a in agreements), len(agreements),
                        MAX_OFFSET_MS, statistics.median(a.offset_ms for a in agreements))
        elif agreements:
            log.info("%s (%s): %s", mirror.setting, mirror.label, account_words(accounts[-1]))
    return accounts


def account_words(account: dict[str, Any]) -> str:
    if not account["measured"]:
        return "not audited (no window of it could be fetched from YouTube)"
    return (f"{account['measured']} copies measured against YouTube: median offset {account['offset_ms']:+.1f} ms, "
            f"agreement {account['agreement']:.3f}, level {account['level_db']:+.1f} dB"
            + ("" if account["kept"] else "; dropped: its copies are not the windows"))


def _account(mirror: Mirror, agreements: list[Agreement], keep: bool) -> dict[str, Any]:
    usable = [a for a in agreements if a.offset_ms == a.offset_ms]  # not NaN
    return {"mirror": mirror.label, "measured": len(usable), "kept": keep,
            "offset_ms": statistics.median(a.offset_ms for a in usable) if usable else None,
            "agreement": statistics.median(a.correlation for a in usable) if usable else None,
            "level_db": statistics.median(a.level_db for a in usable) if usable else None,
            "off": sum(a.off for a in usable)}


def _measure(worker: ClipWorker, mirrors: Mirrors, mirror: Mirror, segment: Segment, stop: threading.Event
             ) -> Agreement | None:
    with tempfile.TemporaryDirectory(prefix="audioset-audit-") as folder:
        scratch = CsvOutputs(Path(folder), worker.outputs.name)
        scratch.prepare()
        fetcher = worker.writing_to(scratch)
        fetcher.shared = None  # a window another list's process claims is still fetched here: it is a probe
        fetched = fetcher.from_youtube(segment, stop, reuse_checked=True)
        if fetched.file is None:
            log.info("%s: not measurable against YouTube: %s", segment.ytid, fetched.detail or "not fetched")
            return None
        alone = Mirrors(mirrors.mirrors,
                        {segment.ytid: [(n, c) for n, c in mirrors.copies.get(segment.ytid, []) if n == mirror.number]},
                        mirrors.audioset)
        copy = Path(folder) / f"copy-{Path(fetched.file).name}"
        if alone.take(segment, copy, worker.settings, stop) is None:
            return None
        return compare(find_ffmpeg(worker.settings.ffmpeg_binary), segment.ytid, copy, scratch.root / fetched.file)


def _load(path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
