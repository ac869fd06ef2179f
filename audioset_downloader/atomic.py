"""Every file the tool writes appears whole or not at all: written under a temporary name, then renamed.

A reader (a user, a rerun, another CSV's process) never sees half a file; a kill leaves at most a
``*.part`` temporary, which the next run sweeps (``CsvOutputs.remove_partials``). Every stage writes
through here (clips, manifests, shards, identities.json, reports, cards), so it sits below them all.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, BinaryIO, TextIO

PARTIAL_SUFFIX = ".part"


def partial_path(final: Path) -> Path:
    """A unique temporary name beside ``final``, removed by the next run if left over."""
    handle, name = tempfile.mkstemp(prefix=f"{final.name}.", suffix=PARTIAL_SUFFIX, dir=final.parent)
    os.close(handle)
    return Path(name)


@contextlib.contextmanager
def atomic_writer(path: Path, errors: str = "strict") -> Iterator[TextIO]:
    """A text handle whose content replaces ``path`` only once complete: a crash leaves the old file."""
    with _atomic(path, lambda temp: open(temp, "w", encoding="utf-8", newline="", errors=errors), True) as handle:
        yield handle


@contextlib.contextmanager
def atomic_binary(path: Path, sync: bool = True) -> Iterator[BinaryIO]:
    """A binary handle whose content appears at ``path`` only once complete; ``sync``: on disk first."""
    with _atomic(path, lambda temp: open(temp, "wb"), sync) as handle:
        yield handle


@contextlib.contextmanager
def _atomic(path: Path, opener: Callable[[Path], IO], sync: bool) -> Iterator[IO]:
    temp = partial_path(path)
    try:
        with opener(temp) as handle:
            yield handle
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_atomically(path: Path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)
