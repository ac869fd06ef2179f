"""``--doctor``: a preflight table of everything a download depends on, each with its fix.

One line per check, status ``ok``, ``warn`` or ``FAIL``. Offline it inspects this
machine only (ffmpeg, the backends and their versions, yt-dlp's JS runtime, the
cache, cookies, proxy, the output folder); ``--online`` also has each backend
resolve one long-lived public video and ffmpeg read one second of it. Exit status
0 when nothing FAILs, else 1.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from audioset_downloader.engine.runner import count_planned
from audioset_downloader.errors import EXIT_FATAL, EXIT_OK, ClipFailure, ConfigError, DownloaderError
from audioset_downloader.fetch.backends import load_backend
from audioset_downloader.fetch.backends.base import Backend
from audioset_downloader.fetch.cutter import cut_clip, find_ffmpeg
from audioset_downloader.fetch.measure import SILENT_CLIPS_SAID
from audioset_downloader.inputs.cookies import load_cookies
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs import provenance
from audioset_downloader.outputs.summary import size_words

OK, WARN, FAIL, SKIPPED = "ok", "warn", "FAIL", "skipped"

# "Me at the zoo" (2005): YouTube's first video, public ever since; 19 s long.
ONLINE_VIDEO = "jNQXAC9IVRw"
# pytube's last release (15.0.0, May 2023) fails against YouTube's player (pytube#2032, #1954).
PYTUBE_LAST_RELEASE = ("15.0.0", "2023-05")
YTDLP_STALE_DAYS = 90  # YouTube changes monthly; a yt-dlp older than this has likely missed a fix
# Estimated bytes per second of clip, per format, for the free-space check.
BYTES_PER_SECOND = {"flac": 0.6, "opus": 16_000, "m4a": 24_000, "mp4": 80_000}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str


def run_doctor(settings: Settings, online: bool) -> tuple[str, int]:
    """The table to print and the exit status."""
    checks = list(_checks(settings, online))
    width = max(len(check.name) for check in checks)
    lines = [f"{'check':<{width}}  status   detail"]
    lines += [f"{check.name:<{width}}  {check.status:<7}  {check.detail}" for check in checks]
    failed = sum(check.status == FAIL for check in checks)
    warned = sum(check.status == WARN for check in checks)
    lines.append(f"{failed} failed, {warned} warnings" + ("" if online else "; --doctor --online also tries YouTube"))
    return "\n".join(lines), EXIT_FATAL if failed else EXIT_OK


def _checks(settings: Settings, online: bool) -> Iterator[Check]:
    ffmpeg_check, ffmpeg = _ffmpeg(settings)
    yield ffmpeg_check
    backends: list[Backend] = []
    for index, name in enumerate(settings.backend_chain):
        check, backend = _backend(settings, name, first=index == 0)
        yield check
        if backend is not None:
            backends.append(backend)
    if any(backend.name == "yt-dlp" for backend in backends):
        yield from _js_runtime(backends)
    yield _cache(settings)
    if settings.identities:  # each identity's own address and account
        for identity in settings.identities:
            yield _cookies(identity.cookies_file, f"identity {identity.name}: cookies")
            yield _proxy(identity.proxy, f"identity {identity.name}: proxy")
    else:
        yield _cookies(settings.cookies_file, "COOKIES_FILE")
        yield _proxy(settings.proxy, "PROXY")
    yield _output(settings)
    yield Check("silent clips", OK, SILENT_CLIPS_SAID[settings.silent_clips])
    youtube = [backend for backend in backends if backend.name != "direct"]
    if not online or not ffmpeg:
        why = "no usable ffmpeg" if online else "offline; add --online to resolve and cut one second of a public video"
        yield from (Check(f"online: {backend.name}", SKIPPED, why) for backend in youtube)
        return
    tried = [_online(settings, backend, f"online: {backend.name}") for backend in youtube]
    if any(check.status == OK for check in tried):  # the chain gets through: a failing member only warns
        tried = [replace(check, status=WARN) if check.status == FAIL else check for check in tried]
    yield from tried


def _ffmpeg(settings: Settings) -> tuple[Check, str]:
    try:
        ffmpeg = find_ffmpeg(settings.ffmpeg_binary)
    except DownloaderError as exc:
        return Check("ffmpeg", FAIL, str(exc)), ""
    version = provenance.ffmpeg_version(ffmpeg)
    protocols = subprocess.run([ffmpeg, "-hide_banner", "-protocols"], capture_output=True, text=True).stdout
    if "https" not in protocols.split():
        return Check("ffmpeg", FAIL, f"{version} at {ffmpeg} cannot read https URLs; pip install -U "
                                     "imageio-ffmpeg, or set FFMPEG_BINARY to an ffmpeg built with TLS"), ""
    return Check("ffmpeg", OK, f"{version} at {ffmpeg}, reads https"), ffmpeg


def _backend(settings: Settings, name: str, first: bool) -> tuple[Check, Backend | None]:
    label = f"backend {name}" + (" (BACKEND)" if first else " (fallback)")
    try:
        backend = load_backend(settings, name)
    except DownloaderError as exc:
        return Check(label, FAIL if first else WARN, f"{exc}" + ("" if first else "; left out of the chain")), None
    version = provenance.backend_version(name) or "?"
    if name == "pytube" and _numbers(version) <= _numbers(PYTUBE_LAST_RELEASE[0]):
        return Check(label, WARN, f"{version}, released {PYTUBE_LAST_RELEASE[1]}: broken against today's YouTube "
                                  f"(its player API answers 400); the chain goes on to the next backend"), backend
    if name == "yt-dlp":
        age = _days_since_release(version)
        if age is not None and age > YTDLP_STALE_DAYS:
            return Check(label, WARN, f"{version}, {age} days old: YouTube changes often; "
                                      "pip install -U 'yt-dlp[default,deno]'"), backend
    return Check(label, OK, version), backend


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _days_since_release(version: str) -> int | None:
    """yt-dlp's versions are its release dates (2026.10.26)."""
    try:
        released = time.mktime(time.strptime(".".join(version.split(".")[:3]), "%Y.%m.%d"))
    except ValueError:
        return None
    return int((time.time() - released) // 86400)


def _js_runtime(backends: list[Backend]) -> Iterator[Check]:
    runtime = provenance.js_runtime_of(backends)
    if runtime is None:
        yield Check("JS runtime", WARN, "yt-dlp finds none: YouTube's signature challenges go unsolved and formats "
                                        "go missing (yt-dlp#15012); pip install -U 'yt-dlp[default,deno]'")
    elif not runtime["supported"]:
        yield Check("JS runtime", WARN, f"{runtime['name']} {runtime['version']} at {runtime['path']} is too old for "
                                        "yt-dlp; pip install -U deno")
    else:
        yield Check("JS runtime", OK,
                    f"{runtime['name']} {runtime['version']} at {runtime['path']} (as yt-dlp sees it)")
    ejs = provenance.distribution_version("yt-dlp-ejs")
    yield (Check("yt-dlp-ejs", OK, f"{ejs}: the challenge solver scripts") if ejs else
           Check("yt-dlp-ejs", WARN, "not installed: no solver scripts; pip install -U 'yt-dlp[default,deno]'"))


def _existing(folder: Path) -> Path:
    """``folder``, or its nearest parent that exists: what a run would create it in."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _writable(folder: Path) -> str | None:
    """None when the run could write in ``folder`` (creating it if need be), else why not; creates nothing."""
    existing = _existing(folder.absolute())
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _cache(settings: Settings) -> Check:
    folder = settings.cache_folder
    problem = _writable(folder)
    if problem:
        return Check("cache folder", WARN, f"{folder}: {problem}; yt-dlp solves each player again. Set CACHE_DIR")
    return Check("cache folder", OK, f"{folder}")


def _cookies(path: Path | None, name: str) -> Check:
    if path is None:
        return Check(name, OK, "none: a guest session (about 300 videos an hour before YouTube's bot check)")
    try:
        jar = load_cookies(path)
    except ConfigError as exc:
        return Check(name, FAIL, str(exc))
    mode = path.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):  # a cookies file is a signed-in session, two-factor check passed
        return Check(name, WARN, f"{path}: other users of this machine can read it (mode {stat.S_IMODE(mode):04o}), "
                                 f"and with it your signed-in session; fix: chmod 600 {shlex.quote(str(path))}")
    youtube = [cookie for cookie in jar if cookie.domain.lstrip(".").endswith("youtube.com")]
    now = time.time()
    expired = [cookie for cookie in youtube if cookie.expires and cookie.expires < now]
    if not youtube:
        return Check(name, WARN, f"{path}: no youtube.com cookies; export them from a browser signed in "
                                           "to YouTube")
    if len(expired) == len(youtube):
        return Check(name, WARN, f"{path}: all {len(youtube)} youtube.com cookies have expired; "
                                           "export them again")
    return Check(name, OK, f"{path}: {len(youtube)} youtube.com cookies, {len(expired)} expired")


def _proxy(proxy: str | None, name: str) -> Check:
    if proxy is None:
        return Check(name, OK, "none: direct connections")
    parts = urlsplit(proxy)
    port = parts.port or {"https": 443, "socks5": 1080, "socks5h": 1080}.get(parts.scheme, 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=5):
            pass
    except OSError as exc:
        return Check(name, FAIL, f"{parts.hostname}:{port} does not answer ({exc.strerror or exc}); "
                                    f"check {name} or start the proxy")
    return Check(name, OK, f"{parts.hostname}:{port} answers")


def clip_bytes(settings: Settings, seconds: float = 10.0) -> float:
    """A rough size of one clip: AudioSet's windows are 10 s; YouTube's audio is 44.1 or 48 kHz stereo."""
    wav = (settings.sample_rate or 48_000) * (settings.channels or 2) * 2 * seconds
    per_second = BYTES_PER_SECOND.get(settings.clip_format)
    if per_second is None:
        return wav
    return wav * per_second if per_second < 1 else per_second * seconds


def _output(settings: Settings) -> Check:
    folder = settings.output_dir
    problem = _writable(folder)
    if problem:
        return Check("OUTPUT_DIR", FAIL, f"{folder}: {problem}; choose another folder")
    planned = sum(count_planned(path, settings) for path in settings.csv_file_names if path.is_file())
    needed = planned * clip_bytes(settings)
    free = shutil.disk_usage(_existing(folder.absolute())).free
    detail = f"{folder}: {size_words(free)} free, about {size_words(needed)} for {planned} planned clips"
    if needed > free:
        return Check("OUTPUT_DIR", WARN, detail + "; free space or choose another folder")
    return Check("OUTPUT_DIR", OK, detail)


def _online(settings: Settings, backend: Backend, name: str) -> Check:
    segment = Segment(ONLINE_VIDEO, 1000, 2000, "", 0, ONLINE_VIDEO)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="doctor.") as folder:
        try:
            source = backend.resolve(segment)
            cut = cut_clip(source, segment, settings, Path(folder) / f"{ONLINE_VIDEO}.{settings.clip_format}",
                           threading.Event())
        except ClipFailure as failure:
            return Check(name, FAIL, f"{failure.reason}: {failure.detail}; fix: {backend.fix_hint}")
    return Check(name, OK, f"resolved {ONLINE_VIDEO} ({source.description}) and cut {cut.seconds:.1f} s "
                           f"in {time.monotonic() - started:.1f} s")

