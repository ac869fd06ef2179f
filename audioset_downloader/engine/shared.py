"""What the CSV processes of one local run share: the pacing book and the window claims.

Both live in one manager process and the CSV processes hold picklable proxies to them, so
eight workers in each of three processes pace one identity as one, and a window two lists
name is fetched once (outputs/reuse.py, WindowClaims). A Dask run keeps its book on the
scheduler instead (pacing/dask_book.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator
from multiprocessing.managers import BaseManager

from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.reuse import WindowClaims
from audioset_downloader.pacing.book import Book, new_book


class _RunManager(BaseManager):
    pass


_RunManager.register("PacingBook", new_book)
_RunManager.register("WindowClaims", WindowClaims)


@contextlib.contextmanager
def hosted(settings: Settings) -> Iterator[tuple[Book, WindowClaims]]:
    """The run's book and claims, in a manager process; the CSV processes hold proxies."""
    manager = _RunManager(ctx=multiprocessing.get_context("spawn"))
    manager.start()
    try:
        yield manager.PacingBook(settings), manager.WindowClaims()  # type: ignore[attr-defined]
    finally:
        manager.shutdown()
