"""Mirrors: public copies of the windows' audio (the Hub, labs' folders, buckets), a source beside the backends.

A window a mirror holds is written from its copy, checked and converted like any clip, with no
request to YouTube and no turn of the pacing book; the backends get only what no copy has. One
module per layout behind ``base.Layout`` (parquet, webdataset, files), as a backend is one module
behind ``backends.base.Backend``: a new layout is one new file and one line here. ``access``
reaches the files, ``index`` finds and caches what a mirror holds, ``source`` takes a window from
it, ``audit`` measures its copies against YouTube's.
"""

from __future__ import annotations

import importlib
import logging

from audioset_downloader.errors import ConfigError
from audioset_downloader.fetch.mirrors.access import MirrorAccess
from audioset_downloader.fetch.mirrors.base import Layout
from audioset_downloader.fetch.mirrors.index import open_index
from audioset_downloader.fetch.mirrors.source import Mirror
from audioset_downloader.inputs.settings import MIRROR_LAYOUTS, Settings

log = logging.getLogger(__name__)

# layout -> (module, class)
LAYOUTS: dict[str, tuple[str, str]] = {
    "parquet": (".parquet", "ParquetLayout"),
    "webdataset": (".webdataset", "WebDatasetLayout"),
    "files": (".files", "FilesLayout"),
}
assert tuple(LAYOUTS) == MIRROR_LAYOUTS, "settings.MIRROR_LAYOUTS and the registry must agree"


def layouts() -> dict[str, Layout]:
    return {name: getattr(importlib.import_module(module, __name__), cls)() for name, (module, cls) in LAYOUTS.items()}


def open_mirrors(settings: Settings) -> list[Mirror]:
    """Every mirror of MIRRORS opened and indexed (from the cache when it can be), or one line saying what is
    wrong with which: a library not installed, a repo or revision that does not exist, a gated repo, a folder of
    no known layout."""
    opened = []
    for number, spec in enumerate(settings.mirrors):
        access = MirrorAccess(spec, f"MIRRORS[{number}]", settings.storage_options)
        choices = layouts()
        index = open_index(access, choices, settings.cache_folder)
        if index.layout not in choices:
            raise ConfigError(f"MIRRORS[{number}]: its cached index names layout {index.layout!r}; delete "
                              f"{index.path} and rerun")
        opened.append(Mirror(number, access, choices[index.layout], index))
    return opened
