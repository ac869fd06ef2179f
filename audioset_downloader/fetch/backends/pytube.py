"""The ``pytube`` backend (the default): pytube resolves the video's audio streams.

Only metadata goes through pytube (watch page, player API, signature cipher);
the chosen stream's URL goes to ffmpeg, which fetches just the window. The
pytubefix backend reuses this class: the two libraries share this API.
"""

from __future__ import annotations

import importlib
import socket
import urllib.error
from types import ModuleType
from typing import Any

from audioset_downloader.errors import ClipFailure, FailureReason, reason_for_http_status
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings

from .base import DEFAULT_HEADERS, MediaSource, reason_from_message

# The default stream: AAC in mp4 (YouTube's itag 140, 128 kb/s) decodes everywhere
# and is plenty for AudioSet's usual 16-48 kHz training audio.
DEFAULT_MAX_BITRATE = 160_000
DEFAULT_MIN_HEIGHT = 360  # VIDEO without DOWN_HIGHEST_QUALITY: enough to see, small to store

# Exception classes of pytube and pytubefix that name the reason themselves. pytubefix
# raises every failure as a VideoUnavailable, also those that are its own: a client that
# needs a PO token, or no answer from the API. Those are the backend's, not the video's.
_CLASS_REASONS: tuple[tuple[str, FailureReason], ...] = (
    ("PoTokenRequired", FailureReason.BACKEND_ERROR),
    ("InnerTubeResponseError", FailureReason.BACKEND_ERROR),
    ("VideoPrivate", FailureReason.PRIVATE),
    ("MembersOnly", FailureReason.MEMBERS_ONLY),
    ("BotDetection", FailureReason.BOT_CHECK),
    ("AgeRestrictedError", FailureReason.AGE_RESTRICTED),
    ("AgeCheckRequiredError", FailureReason.AGE_RESTRICTED),
    ("AgeCheckRequiredAccountError", FailureReason.AGE_RESTRICTED),
    ("LiveStreamError", FailureReason.LIVE),
    ("LiveStreamOffline", FailureReason.LIVE),
    ("VideoRegionBlocked", FailureReason.REGION_BLOCKED),
    ("VideoBlockedByCopyright", FailureReason.REGION_BLOCKED),
)
# pytubefix's "YouTube said something we did not expect": unless its words say more
# (e.g. LoginRequired with "confirm you're not a bot"), the next backend is asked.
_UNSURE_CLASSES = ("LoginRequired", "UnknownVideoError")


class PytubeBackend:
    name = "pytube"
    package = "pytube"
    fix_hint = "YouTube has likely changed; set BACKEND = 'yt-dlp' or update pytube (pip install -U pytube)"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lib: ModuleType = importlib.import_module(self.package)
        self._exceptions: ModuleType = importlib.import_module(f"{self.package}.exceptions")
        self._extract: ModuleType = importlib.import_module(f"{self.package}.extract")
        self._innertube: ModuleType = importlib.import_module(f"{self.package}.innertube")
        # pytube has no cookie support; a proxy it takes for its metadata requests.
        self._proxies = {"http": settings.proxy, "https": settings.proxy} if settings.proxy else None

    def resolve(self, segment: Segment) -> MediaSource:
        video = None
        try:
            video = self._lib.YouTube(self._settings.url_for(segment.ytid), **self._youtube_options())
            # A SABR stream (pytubefix) has no file URL, only YouTube's streaming endpoint.
            streams = [s for s in video.streams.filter(only_audio=True) if not getattr(s, "is_sabr", False)]
            pictures = ([s for s in video.streams.filter(only_video=True) if not getattr(s, "is_sabr", False)]
                        if self._settings.video else [])
        except Exception as exc:  # every library error becomes a reason here, at the seam
            raise ClipFailure(self._reason(exc, video), f"{type(exc).__name__}: {exc}") from exc
        stream = choose_audio_stream(streams, self._settings.down_highest_quality)
        if stream is None:
            raise ClipFailure(FailureReason.NO_AUDIO, "the video lists no audio-only stream")
        codec = str(stream.audio_codec or "")
        description = f"itag {stream.itag} {stream.mime_type} {stream.abr}"
        video_url = ""
        if self._settings.video:
            picture = choose_video_stream(pictures, self._settings.down_highest_quality)
            if picture is None:
                raise ClipFailure(FailureReason.NO_VIDEO, "the video lists no video-only stream")
            video_url = picture.url
            description += f" + itag {picture.itag} {picture.resolution}"
        return MediaSource(
            url=stream.url,
            headers=DEFAULT_HEADERS,
            description=description,
            codec="aac" if codec.startswith("mp4a") else codec,
            video_url=video_url,
        )

    def _youtube_options(self) -> dict[str, Any]:
        """Keyword arguments for the library's YouTube class."""
        return {"proxies": self._proxies}

    def _reason(self, exc: Exception, video: Any) -> FailureReason:
        for class_name, reason in _CLASS_REASONS:
            cls = getattr(self._exceptions, class_name, None)  # some exist in one library only
            if cls is not None and isinstance(exc, cls):
                return reason
        from_text = reason_from_message(f"{exc} {self._status_text(video)}")
        if from_text is not None:
            return from_text
        if type(exc).__name__ in _UNSURE_CLASSES:
            return FailureReason.BACKEND_ERROR
        if isinstance(exc, self._exceptions.VideoUnavailable):
            return FailureReason.UNAVAILABLE
        return reason_for_exception(exc)

    def _status_text(self, video: Any) -> str:
        """YouTube's own message, from what was already fetched: the player response or the watch page."""
        if video is None:
            return ""
        info = getattr(video, "_vid_info", None)
        status = info.get("playabilityStatus", {}) if isinstance(info, dict) else {}
        parts = [status.get("reason", ""), *status.get("messages", [])]
        html = getattr(video, "_watch_html", None)
        if html:
            try:  # pytube reads the status from the watch page
                parts += list(self._extract.playability_status(html)[1])
            except Exception:  # the message only refines the reason; never fail on it
                pass
        return " ".join(str(part) for part in parts if part)


def reason_for_exception(exc: BaseException) -> FailureReason:
    """Network-level and unknown errors; anything unrecognised is the backend's fault."""
    if isinstance(exc, urllib.error.HTTPError):
        return reason_for_http_status(exc.code)
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return FailureReason.TIMEOUT
    if isinstance(exc, (ConnectionError, OSError)):
        return FailureReason.NETWORK
    return FailureReason.BACKEND_ERROR


def choose_video_stream(streams: list[Any], highest: bool) -> Any | None:
    """The highest resolution, or by default the smallest of at least DEFAULT_MIN_HEIGHT (360p)."""
    def height(stream: Any) -> int:
        return int(str(stream.resolution or "0p").rstrip("p") or 0)

    pictures = [s for s in streams if s.includes_video_track and not s.includes_audio_track]
    if not pictures:
        return None
    best = max(pictures, key=lambda s: (height(s), s.subtype == "mp4"))
    enough = [s for s in pictures if height(s) >= DEFAULT_MIN_HEIGHT]
    if highest or not enough:
        return best
    return min(enough, key=lambda s: (height(s), s.subtype != "mp4"))


def choose_audio_stream(streams: list[Any], highest: bool) -> Any | None:
    """The stream to cut from: the highest bitrate, or a sensible AAC default."""
    audio = [s for s in streams if s.includes_audio_track and not s.includes_video_track]
    if not audio:
        return None
    if highest:
        return max(audio, key=lambda s: s.bitrate or 0)
    aac = [s for s in audio if s.subtype == "mp4" and (s.bitrate or 0) <= DEFAULT_MAX_BITRATE]
    if aac:
        return max(aac, key=lambda s: s.bitrate or 0)
    return min(audio, key=lambda s: s.bitrate or 0)
