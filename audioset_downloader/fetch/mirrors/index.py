"""What a mirror holds, found once per revision and cached under CACHE_DIR.

A Hub repo's index is named by the commit its revision resolves to: a second run asks the Hub that
one question and lists nothing. A folder's or a bucket's has no revision: it is named by a digest of
its listing (paths and sizes), so one listing tells whether the index still holds. The index file
is a header (layout, files) and one tab-separated line per copy, written whole (temp, then rename);
a run loads only the lines of the videos its list names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from audioset_downloader.atomic import atomic_writer
from audioset_downloader.errors import ConfigError
from audioset_downloader.fetch.mirrors.access import FileEntry, MirrorAccess
from audioset_downloader.fetch.mirrors.base import Copy, Layout

log = logging.getLogger(__name__)

VERSION = 1
INDEX_THREADS = 8  # files indexed at once: a footer or a tar's headers each, latency-bound
LOG_EVERY = 500  # files indexed between two progress lines


@dataclass(frozen=True)
class MirrorIndex:
    layout: str
    files: tuple[FileEntry, ...]
    path: Path  # the cached index
    built: bool  # built by this run (False: read from the cache)

    def copies(self, ytids: set[str] | frozenset[str]) -> dict[str, list[Copy]]:
        """The copies of these videos, by YTID."""
        found: dict[str, list[Copy]] = {}
        with open(self.path, encoding="utf-8") as handle:
            next(handle)
            for line in handle:
                ytid, _, rest = line.partition("\t")
                if ytid not in ytids:
                    continue
                start, file, offset, length, group, row = rest.rstrip("\n").split("\t")
                found.setdefault(ytid, []).append(Copy(ytid, int(start) if start else None, int(file), int(offset),
                                                       int(length), int(group), int(row)))
        return found

    def __len__(self) -> int:
        with open(self.path, "rb") as handle:
            return sum(1 for _ in handle) - 1


def cache_folder(cache: Path, access: MirrorAccess) -> Path:
    endpoint = access.fs.endpoint if access.spec.is_hub else ""  # one repo name on two Hubs is two copies
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", access.spec.url)[-60:]
    return cache / "mirrors" / f"{slug}-{hashlib.sha256(f'{endpoint} {access.spec.url}'.encode()).hexdigest()[:10]}"


def open_index(access: MirrorAccess, layouts: dict[str, Layout], cache: Path) -> MirrorIndex:
    """The mirror's index: from the cache when its revision's is there, else built (and cached)."""
    folder = cache_folder(cache, access)
    access.cache = folder
    wanted = access.spec.layout
    if access.commit is not None:  # a Hub repo: its commit names the index, no listing needed to find it
        for name in ([wanted] if wanted else list(layouts)):
            cached = _load(folder / f"{access.commit}.{name}.tsv")
            if cached is not None:
                return cached
    entries = access.listing()
    layout = layouts[wanted] if wanted else recognise(access, entries, layouts)
    path = folder / f"{access.fingerprint(entries)}.{layout.name}.tsv"
    return _load(path) or _build(access, layout, entries, path)


def recognise(access: MirrorAccess, entries: list[FileEntry], layouts: dict[str, Layout]) -> Layout:
    counts = {name: sum(1 for entry in entries if layout.reads(entry)) for name, layout in layouts.items()}
    best = max(counts, key=lambda name: counts[name])
    if not counts[best]:
        raise ConfigError(f"{access.named}: holds no file of a known layout (parquet files, tar shards, or audio "
                          "files named by YTID); point it at the copy's folder, or give its layout: "
                          '{"url": ..., "layout": "parquet" | "webdataset" | "files"}')
    log.info("%s: recognised as the %s layout (%d of its %d files)", access.named, best, counts[best], len(entries))
    return layouts[best]


def _load(path: Path) -> MirrorIndex | None:
    try:
        with open(path, encoding="utf-8") as handle:
            header = json.loads(next(handle))
        if header.get("version") != VERSION:
            return None
        return MirrorIndex(header["layout"], tuple(FileEntry(p, s) for p, s in header["files"]), path, False)
    except (OSError, ValueError, StopIteration, KeyError, TypeError):
        return None


def _build(access: MirrorAccess, layout: Layout, entries: list[FileEntry], path: Path) -> MirrorIndex:
    read = [(number, entry) for number, entry in enumerate(entries) if layout.reads(entry)]
    log.info("%s: indexing its %d files (%s layout), once for this revision", access.named, len(read), layout.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as out, ThreadPoolExecutor(INDEX_THREADS, thread_name_prefix="mirror-index") as pool:
        out.write(json.dumps({"version": VERSION, "layout": layout.name, "url": access.spec.url,
                              "files": [[entry.path, entry.size] for entry in entries]}) + "\n")
        held = 0
        for done, copies in enumerate(pool.map(lambda item: layout.copies_in(access, item[1], item[0]), read), 1):
            for copy in copies:
                out.write(f"{copy.ytid}\t{'' if copy.start_ms is None else copy.start_ms}\t{copy.file}\t"
                          f"{copy.offset}\t{copy.length}\t{copy.row_group}\t{copy.row}\n")
            held += len(copies)
            if done % LOG_EVERY == 0:
                log.info("%s: indexed %d of %d files, %d copies so far", access.named, done, len(read), held)
    log.info("%s: holds %d copies in %d files (%d bytes read to find them)", access.named, held, len(read),
             access.bytes_read)
    return MirrorIndex(layout.name, tuple(entries), path, True)
