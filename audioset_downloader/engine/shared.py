"""What the CSV processes of one local run share: the pacing book and the window claims.

Both live in one manager process and the CSV processes hold picklable proxies to them, so
eight workers in each of three processes pace one identity as one, and a window two lists
name is fetched once (outputs/reuse.py, WindowClaims). Only the videos several lists name
are claimed; they are found once, before the processes start. A Dask run keeps its book on
the scheduler instead (pacing/dask_book.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator, Sequence
from multiprocessing.managers import BaseManager
from pathlib import Path

from audioset_downloader.inputs.lists import listed_videos
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.reuse import SharedWindows, WindowClaims
from audioset_downloader.pacing.book import Book
from audioset_downloader.pacing.learned import new_book


class _RunManager(BaseManager):
    pass


_RunManager.register("PacingBook", new_book)
_RunManager.register("WindowClaims", WindowClaims)


@contextlib.contextmanager
def hosted(settings: Settings) -> Iterator[tuple[Book, SharedWindows | None]]:
    """The run's book and, when its lists share videos, their claims, in a manager process; the CSV processes
    hold proxies."""
    manager = _RunManager(ctx=multiprocessing.get_context("spawn"))
    manager.start()
    try:
        videos = videos_in_several(settings.csv_file_names, settings)
        shared = SharedWindows(videos, manager.WindowClaims()) if videos else None  # type: ignore[attr-defined]
        yield manager.PacingBook(settings), shared  # type: ignore[attr-defined]
    finally:
        manager.shutdown()


def videos_in_several(paths: Sequence[Path], settings: Settings) -> frozenset[str]:
    """The videos two or more of the lists name. Every list but the largest is held as a set; the largest
    (AudioSet's unbalanced list, say: 2 M rows) is only streamed past them."""
    paths = sorted(paths, key=lambda path: path.stat().st_size)
    first_list: dict[str, int] = {}  # video -> the list that named it first
    several: set[str] = set()
    for index, path in enumerate(paths[:-1]):
        for ytid in listed_videos(path, settings):
            if first_list.setdefault(ytid, index) != index:
                several.add(ytid)
    several.update(ytid for ytid in listed_videos(paths[-1], settings) if ytid in first_list)
    return frozenset(several)
