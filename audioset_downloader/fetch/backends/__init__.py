"""Backends turn a segment into a media source that ffmpeg can read.

Each backend is one module holding one class that follows ``base.Backend``.
The registry names the module, imported only when the backend is chosen, so an
optional backend's package is needed only by those who use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from audioset_downloader.errors import BackendUnavailableError
from audioset_downloader.inputs.settings import BACKEND_NAMES, Settings

if TYPE_CHECKING:
    from .base import Backend

# name -> (module, class, the project's extra that installs its package; "" for the base install)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "pytube": (".pytube", "PytubeBackend", ""),
    "direct": (".direct", "DirectBackend", ""),
    "yt-dlp": (".ytdlp", "YtDlpBackend", ""),
    "pytubefix": (".pytubefix", "PytubefixBackend", "pytubefix"),
}
assert set(BACKENDS) == set(BACKEND_NAMES), "settings.BACKEND_NAMES and the registry must agree"


def load_backend(settings: Settings, name: str | None = None) -> Backend:
    """Build a backend (BACKEND by default), or say in one line how to install it."""
    name = name or settings.backend
    module_name, class_name, extra = BACKENDS[name]
    try:  # a backend's package is imported by its module or, like pytubefix's, by its class
        return getattr(importlib.import_module(module_name, __name__), class_name)(settings)
    except ModuleNotFoundError as exc:
        command = f'pip install -e ".[{extra}]"' if extra else "pip install -e ."
        raise BackendUnavailableError(
            f"backend {name!r} needs the {exc.name!r} package, which is not installed; install it with: {command}"
        ) from exc


def check_backend_settings(settings: Settings) -> None:
    """What only a fallback reads is checked before any work too, not when the fallback is first needed:
    YTDLP_OPTIONS, with yt-dlp anywhere in the chain (the yt_dlp package imported only then)."""
    if settings.ytdlp_options and "yt-dlp" in settings.backend_chain:
        try:
            from audioset_downloader.fetch.backends.ytdlp import ytdlp_options
        except ModuleNotFoundError:
            return  # not installed: left out of the chain, as the run leaves it
        ytdlp_options(settings)
