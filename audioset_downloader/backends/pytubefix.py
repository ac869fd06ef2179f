"""The ``pytubefix`` backend: the maintained fork of pytube, through the same code.

pytubefix keeps pytube's API (YouTube, StreamQuery, Stream, the exceptions), so
the pytube backend serves it unchanged; only the package differs.
"""

from __future__ import annotations

from .pytube import PytubeBackend


class PytubefixBackend(PytubeBackend):
    name = "pytubefix"
    package = "pytubefix"
    fix_hint = "YouTube has likely changed; update pytubefix (pip install -U pytubefix) or set BACKEND = 'yt-dlp'"
