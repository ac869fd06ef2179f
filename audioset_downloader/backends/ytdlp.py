"""The ``yt-dlp`` backend: yt-dlp, in process, resolves the audio stream; ffmpeg cuts.

yt-dlp is maintained and follows YouTube's changes within days, so this is the
backend to switch to when pytube breaks. Only its metadata side is used: it picks
the format and hands over the URL and the HTTP headers (and cookies) to send,
which go to the same ranged ffmpeg cut as every other backend.
"""

from __future__ import annotations

import threading
from typing import Any

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, GeoRestrictedError

from ..errors import ClipFailure, FailureReason, reason_for_http_status
from ..segments import Segment
from ..settings import Settings
from .base import MediaSource, reason_from_message

# The default matches the pytube backend's: AAC at up to 160 kb/s (YouTube's itag 140).
DEFAULT_FORMAT = "bestaudio[ext=m4a][abr<=160]/bestaudio[ext=m4a]/bestaudio/best"
HIGHEST_FORMAT = "bestaudio/best"
# VIDEO = True: a video-only stream and the audio above (or one file holding both).
DEFAULT_VIDEO_FORMAT = f"bestvideo[height>=360]*+({DEFAULT_FORMAT})/bestvideo*+({DEFAULT_FORMAT})/best"
HIGHEST_VIDEO_FORMAT = "bestvideo*+bestaudio/best"


class _Quiet:
    """yt-dlp's messages go nowhere: failures come back as exceptions and are logged by the run."""

    def debug(self, message: str) -> None:
        pass

    info = warning = error = debug


class YtDlpBackend:
    name = "yt-dlp"
    fix_hint = "YouTube has likely changed; update yt-dlp (pip install -U yt-dlp)"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._options: dict[str, Any] = {
            "quiet": True, "no_warnings": True, "logger": _Quiet(), "skip_download": True,
            "noplaylist": True, "cachedir": False, "socket_timeout": settings.clip_timeout,
            "format": _format_spec(settings),
        }
        if settings.cookies_file:
            self._options["cookiefile"] = str(settings.cookies_file)
        if settings.proxy:
            self._options["proxy"] = settings.proxy
        self._local = threading.local()  # a YoutubeDL per thread: it keeps per-call state

    def _ydl(self) -> yt_dlp.YoutubeDL:
        ydl = getattr(self._local, "ydl", None)
        if ydl is None:
            ydl = self._local.ydl = yt_dlp.YoutubeDL(self._options)
        return ydl

    def resolve(self, segment: Segment) -> MediaSource:
        try:
            info = self._ydl().extract_info(self._settings.url_for(segment.ytid), download=False)
        except DownloadError as exc:
            raise ClipFailure(reason_for(exc), _message(exc)) from exc
        if info.get("is_live"):
            raise ClipFailure(FailureReason.LIVE, "the video is a live stream")
        chosen = _audio_format(info)
        if chosen is None or not chosen.get("url"):
            raise ClipFailure(FailureReason.NO_AUDIO, "yt-dlp found no audio format")
        headers = dict(chosen.get("http_headers") or info.get("http_headers") or {})
        cookies = self._ydl().cookiejar.get_cookie_header(chosen["url"])
        if cookies:
            headers["Cookie"] = cookies
        codec = str(chosen.get("acodec") or "")
        description = f"format {chosen.get('format_id')} {chosen.get('ext')} {chosen.get('abr') or '?'}k"
        video_url = ""
        if self._settings.video:
            picture = _video_format(info)
            if picture is None:
                raise ClipFailure(FailureReason.NO_VIDEO, "yt-dlp found no video format")
            video_url = picture["url"]
            description += f" + format {picture.get('format_id')} {picture.get('height') or '?'}p"
        return MediaSource(
            url=chosen["url"],
            headers=tuple(headers.items()),
            description=description,
            codec="aac" if codec.startswith("mp4a") else codec,
            video_url=video_url,
        )


def _format_spec(settings: Settings) -> str:
    if settings.video:
        return HIGHEST_VIDEO_FORMAT if settings.down_highest_quality else DEFAULT_VIDEO_FORMAT
    return HIGHEST_FORMAT if settings.down_highest_quality else DEFAULT_FORMAT


def _audio_format(info: dict) -> dict | None:
    """The format yt-dlp selected; of a video+audio pair, the audio."""
    for candidate in info.get("requested_formats") or []:
        if candidate.get("acodec") not in (None, "none"):
            return candidate
    if info.get("acodec") == "none":
        return None
    return info


def _video_format(info: dict) -> dict | None:
    """Of the formats yt-dlp selected, the one with the picture."""
    for candidate in info.get("requested_formats") or [info]:
        if candidate.get("vcodec") != "none" and candidate.get("url"):  # None: unknown, maybe
            return candidate
    return None


def reason_for(exc: DownloadError) -> FailureReason:
    """Walk yt-dlp's chain of causes down to an HTTP status or a message YouTube gave."""
    error: BaseException | None = exc.exc_info[1] if exc.exc_info else exc
    while error is not None:
        if isinstance(error, GeoRestrictedError):
            return FailureReason.REGION_BLOCKED
        if isinstance(error, HTTPError):
            return reason_for_http_status(error.status)
        if isinstance(error, TransportError):
            return FailureReason.TIMEOUT if "timed out" in str(error).lower() else FailureReason.NETWORK
        error = getattr(error, "cause", None) or error.__cause__
    return reason_from_message(str(exc)) or FailureReason.BACKEND_ERROR


def _message(exc: DownloadError) -> str:
    return str(exc).removeprefix("ERROR: ").strip()
