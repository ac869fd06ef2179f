"""Every YouTube-window list the tool reads, recognised by its first lines; one module per shape.

A list module is a backend's twin: ``NAME``, ``recognise(first_lines, settings)``, its shape
(``DELIMITER``, ``HAS_HEADER``, ``FIELDS``), ``window(line, fields, header, settings)`` turning one row
into its ``Window`` (or an InvalidRow), ``merge(notes, more)`` for rows that name the same window,
and ``NOTE_COLUMNS``, the annotations its clips carry; table.py reads the lines for all of them.
``read_list`` turns the windows into the same Segment records the AudioSet reader yields, so the
engine never asks which set a row came from; only the outputs carry the set's notes.
AudioSet's own segment files keep their streaming reader (segments.py), unchanged in speed.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.labels import ClassNameFilter, LabelFilter, Ontology, class_names_of
from audioset_downloader.inputs.lists.table import Window, first_lines, numbered_lines, rows
from audioset_downloader.inputs.segments import MAX_MS, InvalidRow, Segment, new_segment, read_segments
from audioset_downloader.inputs.settings import Settings

# Tried in this order: exact headers first, then the shapes without one. AudioSet is the default
# for a file whose first line is a comment, a "YTID" header or a row of that shape.
LIST_MODULES = ("strong", "audiocaps", "musiccaps", "kinetics", "vggsound", "audioset", "columns")
AUDIOSET = "AudioSet"


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{__name__}.{name}")


def list_format(path: Path, settings: Settings) -> ModuleType:
    """The module that reads ``path``, or one ConfigError naming the file, its first line and the shapes known."""
    lines = first_lines(path)
    for name in LIST_MODULES:
        module = _module(name)
        if module.recognise(lines, settings):
            return module
    first = lines[0] if lines else ""
    known = ", ".join(_module(name).NAME for name in LIST_MODULES[:-1])
    raise ConfigError(f"{path}:1: a list of no known shape (first line {first[:120]!r}); known: {known}; "
                      'for another list with a header, set COLUMNS, e.g. {"ytid": "video_id", "start": "t0", '
                      '"end": None}')


def label_filter(path: Path, settings: Settings, ontology: Ontology | None) -> LabelFilter | ClassNameFilter | None:
    """LABELS and EXCLUDE_LABELS for this list: by MID or AudioSet name, or by the set's own class names
    where its classes are names (VGGSound); an unknown one is a ConfigError before any work."""
    if not settings.labels and not settings.exclude_labels:
        return None
    module = list_format(path, settings)
    if getattr(module, "CLASSES_BY_NAME", False):
        known = {name for row in read_list(path, settings) if type(row) is Segment for name in class_names_of(row)}
        return ClassNameFilter.from_settings(settings, known, module.NAME)
    return LabelFilter.from_settings(settings, ontology) if ontology is not None else None


def classes_of(row: Segment) -> tuple[str, ...]:
    """What --report counts a window under: its MIDs, or its class names where the set has no MIDs."""
    return row.labels or tuple(class_names_of(row))


class NotesOf:
    """A list's annotations by (YTID, start ms), read from the list on the first question (a rare one:
    only a metadata.csv rebuilt after a kill asks)."""

    def __init__(self, path: Path, settings: Settings) -> None:
        self._path, self._settings = path, settings
        self._notes: dict[tuple[str, int], str] | None = None

    def __call__(self, ytid: str, start_ms: int) -> str:
        if self._notes is None:
            self._notes = {(row.ytid, row.start_ms): row.notes for row in read_list(self._path, self._settings)
                           if type(row) is Segment}
        return self._notes.get((ytid, start_ms), "")


def read_list(path: Path, settings: Settings) -> Iterator[Segment | InvalidRow]:
    """Each window of a list as a Segment (rows naming one window are one), and each bad row as an InvalidRow."""
    module = list_format(path, settings)
    return read_segments(path) if module.NAME == AUDIOSET else _read_other(path, module, settings)


def _read_other(path: Path, module: ModuleType, settings: Settings) -> Iterator[Segment | InvalidRow]:
    """Streamed, as AudioSet's reader is: a first pass keeps a hash of each window and counts the rows of
    those listed more than once; the second yields every other window as it comes, and a repeated one
    (AudioCaps' val and test: five rows, five captions a window) at its last row, merged."""
    delimiter = module.delimiter(first_lines(path)) if hasattr(module, "delimiter") else module.DELIMITER
    seen: set[int] = set()
    left: dict[int, int] = {}  # rows still to come, of each window listed more than once
    for row in rows(numbered_lines(path), module, settings, delimiter):
        if not isinstance(row, InvalidRow):
            key = hash(_key(row[1]))
            if key in seen:
                left[key] = left.get(key, 1) + 1
            else:
                seen.add(key)
    del seen
    yield from _segments(_merged(rows(numbered_lines(path), module, settings, delimiter), left, module.merge),
                         settings)


def _merged(rows: Iterator[tuple[int, Window] | InvalidRow], left: dict[int, int],
            merge: Callable[[dict, dict], dict]) -> Iterator[tuple[int, Window] | InvalidRow]:
    held: dict[int, dict[tuple, tuple[int, Window]]] = {}  # by hash: distinct windows may share one
    for row in rows:
        if isinstance(row, InvalidRow) or (hashed := hash(_key(row[1]))) not in left:
            yield row
            continue
        line, window = row
        group = held.setdefault(hashed, {})
        key = _key(window)
        group[key] = (group[key][0], group[key][1].merged(window, merge)) if key in group else (line, window)
        left[hashed] -= 1
        if not left[hashed]:  # its last row: the window is whole
            yield from held.pop(hashed).values()


def _key(window: Window) -> tuple[str, int, int | None]:
    return window.ytid, window.start_ms, window.end_ms


def _segments(rows: Iterable[tuple[int, Window] | InvalidRow], settings: Settings) -> Iterator[Segment | InvalidRow]:
    seen: set[str] = set()
    clip_ms = round(settings.clip_seconds * 1000)
    for row in rows:
        if isinstance(row, InvalidRow):
            yield row
            continue
        line, window = row
        end_ms = window.end_ms if window.end_ms is not None else window.start_ms + clip_ms
        if end_ms > MAX_MS:
            yield InvalidRow(line, (window.ytid, str(window.start_ms / 1000), str(end_ms / 1000)),
                             "the window ends more than a day into the video")
            continue
        stem = f"{window.ytid}_{window.start_ms}" if window.ytid in seen else window.ytid
        seen.add(window.ytid)
        notes = json.dumps(window.notes, ensure_ascii=False, separators=(",", ":"))
        yield new_segment((window.ytid, window.start_ms, end_ms, window.labels, line, stem, window.end_ms is None,
                           notes))


def count_labels(path: Path, settings: Settings) -> Counter[str]:
    """How many valid windows of a list carry each MID (for --list-labels)."""
    counts: Counter[str] = Counter()
    for row in read_list(path, settings):
        if type(row) is Segment:
            counts.update(label for label in row.labels_text.split(",") if label)
    return counts


def count_windows(path: Path, settings: Settings) -> int:
    """The windows a list names, for --status: Google's AudioSet lists name each once, so their data lines
    are counted as bytes (2 M rows in about a second); the other sets' lists, small, are read."""
    if list_format(path, settings).NAME != "AudioSet":
        return sum(1 for row in read_list(path, settings) if type(row) is Segment)
    return sum(1 for _ in _google_rows(path))


def listed_videos(path: Path, settings: Settings) -> Iterator[str]:
    """The YTID of each row (not checked: a set of them is compared with another list's): Google's lists
    read as bytes, the other sets' parsed."""
    if list_format(path, settings).NAME != "AudioSet":
        yield from (row.ytid for row in read_list(path, settings) if type(row) is Segment)
        return
    for line in _google_rows(path):
        yield line.split(b",", 1)[0].strip().decode("ascii", "replace")


def _google_rows(path: Path) -> Iterator[bytes]:
    """The data lines of one of Google's AudioSet lists, as bytes: comments, blank lines and a header left out."""
    with open(path, "rb") as handle:
        for line in handle:
            stripped = line.lstrip()
            # A header is "YTID," or "YTID ,": no YTID (11 characters, then the comma) starts so.
            header = stripped[:4].lower() == b"ytid" and stripped[4:].lstrip(b" ").startswith(b",")
            if stripped and not stripped.startswith(b"#") and not header:
                yield stripped


def audioset_windows(settings: Settings, ytids: set[str]) -> dict[str, tuple[int, int]]:
    """AudioSet's window (start, end in ms) of each of these videos, from the AudioSet lists the run knows: its
    own CSVs of AudioSet's shape and Google's lists in ./data. Every YTID occurs once across AudioSet's lists, so
    a copy named by YTID alone is that window, and serves another list's window only where it is the same."""
    known = [path for path in settings.csv_file_names
             if path.is_file() and list_format(path, settings).NAME == AUDIOSET]
    known += sorted(Path("data").glob("*_segments.csv")) if Path("data").is_dir() else []
    windows: dict[str, tuple[int, int]] = {}
    for path in dict.fromkeys(path.resolve() for path in known):
        for row in read_segments(path):
            if type(row) is Segment and row.ytid in ytids:
                windows.setdefault(row.ytid, (row.start_ms, row.end_ms))
    return windows
