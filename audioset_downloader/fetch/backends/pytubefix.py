"""The ``pytubefix`` backend: the maintained fork of pytube, through the same code.

pytubefix keeps pytube's API (YouTube, StreamQuery, Stream, the exceptions), so the
pytube backend serves it, driven as pytubefix's maintainers intend today (11.x):
the VISION_OS client (its default since 11.0: no PO token, no JS player to run),
named explicitly through PYTUBEFIX_CLIENT; ``use_po_token`` never turned on; and
streams marked ``is_sabr`` left out, as their URL is a SABR endpoint that serves no
ranged file ffmpeg could read.
"""

from __future__ import annotations

from typing import Any

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.settings import Settings

from .pytube import PytubeBackend


class PytubefixBackend(PytubeBackend):
    name = "pytubefix"
    package = "pytubefix"
    fix_hint = "YouTube has likely changed; update pytubefix (pip install -U pytubefix) or set BACKEND = 'yt-dlp'"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        clients = getattr(self._innertube, "_default_clients", {})
        if clients and settings.pytubefix_client not in clients:
            raise ConfigError(f"PYTUBEFIX_CLIENT {settings.pytubefix_client!r} is not a pytubefix client; "
                              f"use one of {', '.join(sorted(clients))} (VISION_OS is pytubefix's default)")

    def _youtube_options(self) -> dict[str, Any]:
        return {**super()._youtube_options(), "client": self._settings.pytubefix_client}
