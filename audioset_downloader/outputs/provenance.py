"""What produced the clips: versions of the package, the backends, the JS runtime and ffmpeg.

Recorded in every X.summary.json and shown by ``--doctor``: a dataset made from
YouTube depends on which library read YouTube, at which version, on which day.
"""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from audioset_downloader import __version__

# Backend -> the distribution whose version says what it is ("direct" is ours).
DISTRIBUTIONS = {"pytube": "pytube", "pytubefix": "pytubefix", "yt-dlp": "yt-dlp"}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def backend_version(backend: str) -> str | None:
    distribution = DISTRIBUTIONS.get(backend)
    return distribution_version(distribution) if distribution else __version__


@functools.cache
def ffmpeg_version(ffmpeg: str) -> str:
    """The version word of ``ffmpeg -version`` ("n9.0.2", "7.1.1-1+b1"), or "" when it will not say."""
    try:
        first = subprocess.run([ffmpeg, "-hide_banner", "-version"], capture_output=True, text=True,
                               timeout=30).stdout.partition("\n")[0]
    except (OSError, subprocess.SubprocessError):
        return ""
    words = first.split()
    return words[2] if len(words) > 2 and words[:2] == ["ffmpeg", "version"] else first


def js_runtime_of(backends: Iterable[Any]) -> dict[str, str] | None:
    """The JS runtime yt-dlp reports it will use (name, version, path), when yt-dlp is in the chain."""
    for backend in backends:
        runtime = getattr(backend, "js_runtime", None)
        info = runtime() if runtime else None
        if info is not None:
            return {"name": info.name, "version": info.version, "path": info.path,
                    "supported": bool(info.supported)}
    return None


def collect(backends: Iterable[Any], ffmpeg: str) -> dict[str, Any]:
    """The provenance of a run that starts now with these backends (in the order tried)."""
    backends = list(backends)
    return {
        "package": f"audioset-downloader {__version__}",
        "backends": {backend.name: backend_version(backend.name) for backend in backends},
        "yt_dlp_ejs": distribution_version("yt-dlp-ejs"),
        "js_runtime": js_runtime_of(backends),
        "ffmpeg": ffmpeg_version(ffmpeg),
        "started_utc": utc_now(),
        "ended_utc": None,
    }
