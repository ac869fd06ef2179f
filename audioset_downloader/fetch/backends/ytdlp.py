"""The ``yt-dlp`` backend: yt-dlp, in process, resolves the audio stream; ffmpeg cuts.

yt-dlp is maintained and follows YouTube's changes within days: it is the first
fallback when pytube breaks. Only its metadata side is used: it picks the format
and hands over the URL and the HTTP headers (and cookies) to send, which go to the
same ranged ffmpeg cut as every other backend.

Driven as its maintainers ask (yt-dlp#15012, the wiki's EJS page): since 2025.11.12
YouTube's signature challenges need a JavaScript runtime and the yt-dlp-ejs solver
scripts, else yt-dlp falls back to fewer player clients and formats go missing. The
base install brings both (``yt-dlp[default,deno]``); the runtime is named by its
path, so that it is found without an activated virtual environment. yt-dlp's cache
(player JS, solved challenges) is kept in CACHE_DIR, so each player is solved once.
Only progressive HTTP(S) formats are chosen: HLS and SABR are not ranged files that
ffmpeg can seek in. A format's ``available_at`` is honoured by the cutter
(YouTube answers 403 before it: yt-dlp#14646, #17062).
"""

from __future__ import annotations

import difflib
import functools
import logging
import re
import threading
from typing import Any

import yt_dlp
from yt_dlp.networking.exceptions import HTTPError, TransportError
from yt_dlp.utils import DownloadError, GeoRestrictedError

from audioset_downloader.errors import ClipFailure, ConfigError, FailureReason, reason_for_http_status
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings

from .base import MediaSource, reason_from_message

log = logging.getLogger(__name__)

# Progressive HTTP(S) only: "http" is what yt-dlp calls a plain-http URL (a lab's
# mirror, the tests' server), "https" YouTube's; HLS (m3u8*), DASH segments and SABR
# are left out.
PROGRESSIVE = "[protocol~='^https?$']"
# The default matches the pytube backend's: AAC at up to 160 kb/s (YouTube's itag 140).
DEFAULT_FORMAT = (f"bestaudio[ext=m4a][abr<=160]{PROGRESSIVE}/bestaudio[ext=m4a]{PROGRESSIVE}"
                  f"/bestaudio{PROGRESSIVE}/best{PROGRESSIVE}")
HIGHEST_FORMAT = f"bestaudio{PROGRESSIVE}/best{PROGRESSIVE}"
# VIDEO = True: a video-only stream and the audio above (or one file holding both).
DEFAULT_VIDEO_FORMAT = (f"bestvideo[height>=360]{PROGRESSIVE}*+({DEFAULT_FORMAT})"
                        f"/bestvideo{PROGRESSIVE}*+({DEFAULT_FORMAT})/best{PROGRESSIVE}")
HIGHEST_VIDEO_FORMAT = f"bestvideo{PROGRESSIVE}*+({HIGHEST_FORMAT})/best{PROGRESSIVE}"

# YTDLP_OPTIONS keys this backend must own: it only resolves, never downloads or post-processes.
RESERVED_OPTIONS = frozenset({"logger", "skip_download", "simulate", "outtmpl", "postprocessors",
                              "progress_hooks", "postprocessor_hooks", "format"})


class _LogOnce:
    """yt-dlp's warnings go to our log, each text once per run; errors come back as exceptions."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def debug(self, message: str) -> None:
        pass

    info = error = debug

    def warning(self, message: str) -> None:
        with self._lock:
            if message in self._seen:
                return
            self._seen.add(message)
        log.warning("yt-dlp: %s", message.removeprefix("WARNING: "))


def deno_path() -> str | None:
    """The deno binary the ``deno`` package (a base dependency) installed, if it did."""
    try:
        import deno

        return deno.find_deno_bin()
    except (ImportError, FileNotFoundError):
        return None


@functools.lru_cache(maxsize=1)
def known_options() -> frozenset[str]:
    """Every option yt-dlp's own command line can set: the keys YTDLP_OPTIONS may use."""
    return frozenset(yt_dlp.parse_options([]).ydl_opts)


def ytdlp_options(settings: Settings) -> dict[str, Any]:
    """yt-dlp's options for resolving only, with YTDLP_OPTIONS merged in (checked first)."""
    unknown = sorted(set(settings.ytdlp_options) - known_options())
    if unknown:
        hint = difflib.get_close_matches(unknown[0], known_options(), n=1)
        raise ConfigError(f"YTDLP_OPTIONS: {unknown[0]!r} is not a yt-dlp option"
                          + (f"; did you mean {hint[0]!r}?" if hint else "; see yt-dlp's YoutubeDL.py for the names"))
    reserved = sorted(set(settings.ytdlp_options) & RESERVED_OPTIONS)
    if reserved:
        raise ConfigError(f"YTDLP_OPTIONS: {reserved[0]!r} is set by the downloader itself; remove it")
    runtime = deno_path()
    options: dict[str, Any] = {
        "quiet": True, "no_warnings": False, "logger": _LogOnce(), "skip_download": True,
        "noplaylist": True, "socket_timeout": settings.clip_timeout, "format": _format_spec(settings),
        "cachedir": str(settings.cache_folder / "yt-dlp"),
        # Without the deno package, {} lets yt-dlp look for a deno on PATH itself.
        "js_runtimes": {"deno": {"path": runtime} if runtime else {}},
    }
    if settings.cookies_file:
        options["cookiefile"] = str(settings.cookies_file)
    if settings.proxy:
        options["proxy"] = settings.proxy
    return {**options, **settings.ytdlp_options}


class YtDlpBackend:
    name = "yt-dlp"
    fix_hint = ("YouTube has likely changed; update yt-dlp (pip install -U 'yt-dlp[default,deno]'), "
                "and check the JS runtime with: python AudioDownloader.py --doctor")

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._options = ytdlp_options(settings)
        self._local = threading.local()  # a YoutubeDL per thread: it keeps per-call state

    @property
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def js_runtime(self) -> Any | None:
        """yt-dlp's own view of the JS runtime it will use (name, path, version, supported), or None."""
        for runtime in self._ydl()._js_runtimes.values():
            if runtime is not None and runtime.info is not None:
                return runtime.info
        return None

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
        available_at = float(chosen.get("available_at") or 0)
        video_url = ""
        if self._settings.video:
            picture = _video_format(info)
            if picture is None:
                raise ClipFailure(FailureReason.NO_VIDEO, "yt-dlp found no video format")
            video_url = picture["url"]
            description += f" + format {picture.get('format_id')} {picture.get('height') or '?'}p"
            available_at = max(available_at, float(picture.get("available_at") or 0))
        return MediaSource(
            url=chosen["url"],
            headers=tuple(headers.items()),
            description=description,
            codec="aac" if codec.startswith("mp4a") else codec,
            video_url=video_url,
            available_at=available_at,
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
            reason = reason_for_http_status(error.status)
            if reason.permanent and _API_REQUEST.search(str(exc)):
                # YouTube's innertube API refusing our request says nothing of the video.
                return FailureReason.BACKEND_ERROR
            return reason
        if isinstance(error, TransportError):
            return FailureReason.TIMEOUT if "timed out" in str(error).lower() else FailureReason.NETWORK
        error = getattr(error, "cause", None) or error.__cause__
    if _NO_FORMAT in str(exc):
        # No format passed our selection (none progressive, or formats lost for want of a
        # JS runtime: yt-dlp#15012): the backend's trouble, not the video's; never permanent.
        return FailureReason.BACKEND_ERROR
    return reason_from_message(str(exc)) or FailureReason.BACKEND_ERROR


_NO_FORMAT = "Requested format is not available"
# yt-dlp's words for a request to YouTube's API ("Unable to download API page: HTTP Error 404").
_API_REQUEST = re.compile(r"Unable to download (?:API page|API JSON|[\w ]*player API JSON)")


def _message(exc: DownloadError) -> str:
    return str(exc).removeprefix("ERROR: ").strip()
