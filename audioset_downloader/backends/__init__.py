"""Backends turn a segment into a media source that ffmpeg can read.

Each backend is one module holding one class that follows ``base.Backend``.
The registry names the module, imported only when the backend is chosen, so an
optional backend's package is needed only by those who use it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import BackendUnavailableError

if TYPE_CHECKING:
    from ..settings import Settings
    from .base import Backend

# name -> (module, class, the project's extra that installs its package)
BACKENDS: dict[str, tuple[str, str, str]] = {
    "pytube": (".pytube", "PytubeBackend", ""),
    "direct": (".direct", "DirectBackend", ""),
    "yt-dlp": (".ytdlp", "YtDlpBackend", "ytdlp"),
    "pytubefix": (".pytubefix", "PytubefixBackend", "pytubefix"),
}


def load_backend(settings: Settings) -> Backend:
    """Build the configured backend, or say in one line how to install it."""
    module_name, class_name, extra = BACKENDS[settings.backend]
    try:
        module = importlib.import_module(module_name, __name__)
    except ModuleNotFoundError as exc:
        command = f'pip install -e ".[{extra}]"' if extra else f"pip install {exc.name}"
        raise BackendUnavailableError(
            f"BACKEND = {settings.backend!r} needs the {exc.name!r} package, which is not installed; "
            f"install it with: {command}"
        ) from exc
    return getattr(module, class_name)(settings)
