"""Cutting audio: ffmpeg reads only the window from the media URL and writes the clip.

``-ss`` before ``-i`` makes ffmpeg seek in the input: over HTTP it issues Range
requests, so only the bytes around the window travel, not the whole video. Input
seeking alone lands up to one codec frame (~21 ms) off when re-encoding, so it
stops PRE_ROLL short of the window and an ``atrim`` filter drops the rest while
decoding, which is exact (measured: within 1.3 ms on AAC and Opus) for one extra
second of audio. AAC into m4a/mp4 without resampling is stream-copied instead:
then the MP4 edit list ffmpeg writes starts playback exactly at the window, and
the clip ends on the AAC frame (<= 23 ms) after it. With VIDEO the video stream
is copied the same way. The clip is written under a temporary name and renamed
only once it is complete and has the expected duration.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

from audioset_downloader.atomic import partial_path
from audioset_downloader.errors import (
    ClipFailure,
    FailureReason,
    FfmpegNotFoundError,
    Interrupted,
    OutputUnwritableError,
    reason_for_http_status,
)
from audioset_downloader.fetch.backends.base import MediaSource
from audioset_downloader.fetch.header_relay import SECRET_HEADERS, header_relay, secret_headers
from audioset_downloader.fetch.measure import FILTERS as MEASURE_FILTERS
from audioset_downloader.fetch.measure import LOG_LEVEL as MEASURE_LOG_LEVEL
from audioset_downloader.fetch.measure import ClipMeasures, measure_command, measures_from, silent_detail, split_printed
from audioset_downloader.inputs.segments import Segment, format_seconds
from audioset_downloader.inputs.settings import CLIP_EXTENSIONS, Settings

# The only protocols a media URL may need ("httpproxy": an https URL through PROXY is a CONNECT
# tunnel); "file:", "concat:" and the like are refused.
ALLOWED_PROTOCOLS = "http,https,tcp,tls,httpproxy"
ALLOWED_SCHEMES = ("http", "https")

# AUDIO_FORMAT -> (file extension, ffmpeg muxer, codec arguments)
FORMATS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "wav": ("wav", "wav", ("-c:a", "pcm_s16le")),
    "flac": ("flac", "flac", ("-c:a", "flac")),
    "opus": ("opus", "ogg", ("-c:a", "libopus", "-b:a", "128k")),
    "m4a": ("m4a", "ipod", ("-c:a", "aac", "-b:a", "192k")),
    "mp4": ("mp4", "mp4", ("-c:a", "aac", "-b:a", "192k")),  # VIDEO = True
}
assert {ext for ext, _, _ in FORMATS.values()} == set(CLIP_EXTENSIONS), "settings names the clips' extensions"
# Formats whose container takes an AAC stream as it is.
AAC_CONTAINERS = ("m4a", "mp4")

# A clip may come out shorter than its window by a few audio frames at the very
# end of a video; more than this means the window lies (partly) past the end.
SHORT_TOLERANCE_S = 0.5
# A window with no end in its list (AudioCaps, VGGSound...) is cut at the video's end; one that
# starts at or past it yields no audio frame at all.
MIN_OPEN_END_S = 0.05
PRE_ROLL_MS = 1000
FLAC_BLOCK = 4608  # samples per FLAC frame: the encoder's own choice at 44.1 and 48 kHz

# Bounded HTTP requests. Unbounded ("bytes=0-"), the first connection streams on
# while ffmpeg opens the ranged one for the window: one round trip of wasted bytes.
# Measured at 100 ms, 2 MB/s (benchmarks/README.md): 472 KB fetched per 10 s clip
# unbounded, 344 KB bounded, for one more request. 64 KiB covers a file's header
# probe; 192 KiB holds an 11 s window at 128 kb/s. Older ffmpegs lack the options.
HTTP_REQUEST_OPTIONS = ("-initial_request_size", "65536", "-request_size", "196608")
POLL_S = 0.2

_HTTP_STATUS = re.compile(r"HTTP error (\d{3})")
_CONTEXT = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\]\s*")  # ffmpeg's "[http @ 0x55aa...] " prefix
_DISK_FULL = ("No space left on device", "Disk quota exceeded", "Read-only file system")
_STDERR_REASONS: tuple[tuple[str, FailureReason], ...] = (
    # The media named an input of a protocol ffmpeg may not open here (ALLOWED_PROTOCOLS): the source's doing.
    ("not on whitelist", FailureReason.BACKEND_ERROR),
    # VIDEO's second input has no picture (ffmpeg 7+ names the map here, older ones above).
    ("'1:v:0' for option 'map'", FailureReason.NO_VIDEO),
    ("'1:v:0' matches no streams", FailureReason.NO_VIDEO),
    ("matches no streams", FailureReason.NO_AUDIO),
    ("does not contain any stream", FailureReason.NO_AUDIO),
    ("timed out", FailureReason.TIMEOUT),
    ("Connection refused", FailureReason.NETWORK),
    ("Connection reset", FailureReason.NETWORK),
    ("Broken pipe", FailureReason.NETWORK),
    ("Network is unreachable", FailureReason.NETWORK),
    ("Name or service not known", FailureReason.NETWORK),
    ("Failed to resolve hostname", FailureReason.NETWORK),
    ("I/O error", FailureReason.NETWORK),
    ("End of file", FailureReason.NETWORK),
    ("Stream ends prematurely", FailureReason.NETWORK),
)


Environment = dict[str, str] | None  # a child's environment; None: this process's own


@dataclass(frozen=True)
class CutResult:
    path: Path
    seconds: float  # duration written
    size: int
    measures: ClipMeasures | None = None  # level and silence (fetch/measure.py); None if ffmpeg gave none


def extension_for(audio_format: str) -> str:
    return FORMATS[audio_format][0]


@functools.cache
def find_ffmpeg(configured: str | None = None) -> str:
    """FFMPEG_BINARY (setting, then environment), else imageio-ffmpeg's binary, else PATH."""
    wanted = configured or os.environ.get("FFMPEG_BINARY")
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise FfmpegNotFoundError(f"FFMPEG_BINARY {wanted!r} is not an executable; fix the path or unset it")
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if found is None:
            raise FfmpegNotFoundError(
                "no ffmpeg found; install it with: pip install imageio-ffmpeg (or set FFMPEG_BINARY)"
            ) from None
        return found


@functools.cache
def _supports_request_sizes(ffmpeg: str) -> bool:
    listing = subprocess.run([ffmpeg, "-hide_banner", "-h", "protocol=http"], capture_output=True, text=True)
    return "initial_request_size" in listing.stdout


def copies_audio(source: MediaSource, settings: Settings) -> bool:
    """Stream copy: the source is AAC, the container takes it and nothing asks to resample."""
    return (source.codec == "aac" and settings.clip_format in AAC_CONTAINERS
            and not settings.sample_rate and not settings.channels)


def ffmpeg_command(ffmpeg: str, source: MediaSource, segment: Segment, settings: Settings, out: Path) -> list[str]:
    """The argument list (never a shell string) that cuts ``segment`` from ``source`` into ``out``."""
    copy = copies_audio(source, settings)
    pre_roll_ms = 0 if copy else min(PRE_ROLL_MS, segment.start_ms)
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", MEASURE_LOG_LEVEL, "-nostats", "-progress", "pipe:1"]
    command += _input(ffmpeg, source, source.url, segment.start_ms - pre_roll_ms, settings)
    if settings.video:
        # A second connection, even to the same file: the video seeks to the window
        # itself (to the keyframe before it; the edit list hides the rest).
        command += _input(ffmpeg, source, source.video_url or source.url, segment.start_ms, settings)
        command += ["-map", "1:v:0", "-c:v", "copy"]
    else:
        command += ["-vn"]
    command += ["-map", "0:a:0", "-t", format_seconds(segment.end_ms - segment.start_ms)]
    return command + _encoded(settings, copy, pre_roll_ms, out)


def _encoded(settings: Settings, copy: bool, pre_roll_ms: int, out: Path) -> list[str]:
    """The output half of a command: the audio filters (trim, FLAC blocks, measures), the codec, the file."""
    _, muxer, codec = FORMATS[settings.clip_format]
    command = ["-sn", "-dn", "-map_metadata", "-1"]
    if copy:
        command += ["-c:a", "copy"]
    else:
        filters = [f"atrim=start={format_seconds(pre_roll_ms)},asetpts=PTS-STARTPTS"] if pre_roll_ms else []
        rate_filtered = settings.clip_format == "flac"
        if rate_filtered:
            # FLAC's encoder takes its block size from the first frame it is given, and the trim can
            # leave one of a few samples ("invalid block size: 8", nothing written): hand it whole
            # blocks, made after any resampling, which would cut frames anew.
            filters += [f"aresample={settings.sample_rate}"] if settings.sample_rate else []
            filters.append(f"asetnsamples=n={FLAC_BLOCK}:p=0")
        filters.append(MEASURE_FILTERS)  # analysis only: the samples pass through unchanged
        command += ["-af", ",".join(filters)]
        command += codec
        if settings.sample_rate and not rate_filtered:
            command += ["-ar", str(settings.sample_rate)]
        if settings.channels:
            command += ["-ac", str(settings.channels)]
    # Bit-exact: the same window gives the same bytes whichever run wrote it.
    command += ["-fflags", "+bitexact", "-flags:a", "+bitexact", "-f", muxer, "-y", str(out)]
    return command


def _input(ffmpeg: str, source: MediaSource, url: str, seek_ms: int, settings: Settings) -> list[str]:
    """One HTTP input: its per-input options, the seek, then ``-i``."""
    options = [
        "-protocol_whitelist", ALLOWED_PROTOCOLS,
        # Give up on a stalled connection: microseconds.
        "-rw_timeout", str(int(settings.clip_timeout * 1_000_000)),
    ]
    # Secret headers (a Cookie) never go here: private_channel hands them to the relay.
    headers = "".join(f"{name}: {value}\r\n" for name, value in source.headers if name.lower() not in SECRET_HEADERS)
    if headers:
        options += ["-headers", headers]
    if _supports_request_sizes(ffmpeg):
        options += HTTP_REQUEST_OPTIONS
    if seek_ms > 0:
        options += ["-ss", format_seconds(seek_ms)]
    return [*options, "-i", url]


def cut_clip(
    source: MediaSource,
    segment: Segment,
    settings: Settings,
    final: Path,
    stop: threading.Event,
) -> CutResult:
    """Write ``segment`` of ``source`` to ``final`` atomically, or raise ClipFailure."""
    for url in filter(None, (source.url, source.video_url)):
        if urlsplit(url).scheme not in ALLOWED_SCHEMES:
            raise ClipFailure(FailureReason.BACKEND_ERROR, f"refused a non-HTTP media URL: {url[:80]}")
    early = source.available_at - time.time()
    if early > 0 and stop.wait(early):  # YouTube refuses (403) the media before then
        raise Interrupted()
    try:
        temp = partial_path(final)
    except OSError as exc:
        raise OutputUnwritableError(f"{final.parent}: cannot write ({exc.strerror}); fix it, then rerun") from exc
    try:
        with private_channel(source, settings) as (source, environment, relay_failures):
            command = ffmpeg_command(find_ffmpeg(settings.ffmpeg_binary), source, segment, settings, temp)
            returncode, progress, stderr = _run(command, settings.clip_timeout, stop, environment)
        printed, stderr = split_printed(stderr)
        stderr = "\n".join([*relay_failures, stderr])
        seconds = _written_seconds(progress)
        _check(returncode, stderr, seconds, segment, final)
        size = temp.stat().st_size
        if copies_audio(source, settings):  # not decoded by the cut: decoded once to be measured (stop heeded)
            code, decode_progress, decoded = _run(measure_command(find_ffmpeg(settings.ffmpeg_binary), temp),
                                                  settings.clip_timeout, stop)
            # The decoded duration: the copy's own report counts AAC frames its edit list leaves out.
            measures = measures_from(decoded, _written_seconds(decode_progress) or seconds) if code == 0 else None
        else:
            measures = measures_from(printed, seconds)
        if settings.silent_clips == "drop" and measures is not None and measures.silent:
            raise ClipFailure(FailureReason.SILENT, silent_detail(measures))  # never renamed into place
        os.replace(temp, final)
        return CutResult(final, seconds, size, measures)
    finally:
        temp.unlink(missing_ok=True)


def convert_copy(copy: Path, segment: Segment, settings: Settings, final: Path, stop: threading.Event) -> CutResult:
    """Write a mirror's copy of ``segment`` (a local file holding just the window) to ``final`` atomically, as
    the run's clips are: decoded whole (a decoding error fails it), converted, measured. A copy longer than
    its window is not that window; a shorter one keeps its real end, as a video cut short does."""
    try:
        temp = partial_path(final)
    except OSError as exc:
        raise OutputUnwritableError(f"{final.parent}: cannot write ({exc.strerror}); fix it, then rerun") from exc
    try:
        command = [find_ffmpeg(settings.ffmpeg_binary), "-nostdin", "-hide_banner", "-loglevel", MEASURE_LOG_LEVEL,
                   "-nostats", "-progress", "pipe:1", "-xerror", "-protocol_whitelist", "file",
                   "-i", f"file:{copy}", "-vn", "-map", "0:a:0", *_encoded(settings, False, 0, temp)]
        returncode, progress, stderr = _run(command, settings.clip_timeout, stop)
        printed, stderr = split_printed(stderr)
        seconds = _written_seconds(progress)
        for phrase in _DISK_FULL:
            if phrase in stderr:
                raise OutputUnwritableError(
                    f"{final.parent}: {phrase.lower()}; free space, then rerun: finished clips are kept")
        if returncode != 0:
            raise ClipFailure(FailureReason.FFMPEG_ERROR, f"the copy does not decode: {_last_line(stderr)}")
        if seconds > segment.duration + SHORT_TOLERANCE_S or seconds < MIN_OPEN_END_S:
            raise ClipFailure(FailureReason.WINDOW_OUT_OF_RANGE,
                              f"the copy lasts {seconds:.2f} s, not the window's {segment.duration:g} s")
        measures = measures_from(printed, seconds)
        if settings.silent_clips == "drop" and measures is not None and measures.silent:
            raise ClipFailure(FailureReason.SILENT, silent_detail(measures))
        size = temp.stat().st_size
        os.replace(temp, final)
        return CutResult(final, seconds, size, measures)
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def private_channel(source: MediaSource, settings: Settings) -> Iterator[tuple[MediaSource, Environment, list[str]]]:
    """``source`` as ffmpeg should open it, ffmpeg's environment, and the relay's failures: no secret on its
    command line.

    The proxy (its password included) goes in the environment, where ffmpeg's HTTP client reads
    ``http_proxy`` as it would ``-http_proxy``; secret headers go through the header relay."""
    secret = secret_headers(source.headers)
    failures: list[str] = []
    if not secret:
        yield source, (None if settings.proxy is None else {**os.environ, "http_proxy": settings.proxy}), failures
        return
    relay = header_relay()
    with contextlib.ExitStack() as routes:

        def routed(original: str) -> str:
            return routes.enter_context(relay.route(original, secret, settings.proxy, settings.clip_timeout,
                                                    failures))

        video_url = None if source.video_url is None else routed(source.video_url)
        # no_proxy could send ffmpeg around the relay, to a host that does not exist
        environment = {**os.environ, "http_proxy": relay.proxy_url, "no_proxy": ""}
        yield replace(source, url=routed(source.url), video_url=video_url), environment, failures


def _run(command: list[str], timeout: float, stop: threading.Event,
         environment: Environment = None) -> tuple[int, str, str]:
    # A session of its own: Ctrl-C in the terminal reaches us, not ffmpeg, so an
    # interrupted clip is told apart from a failed one.
    process = subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
        env=environment,
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            out, err = process.communicate(timeout=POLL_S)
            return process.returncode, out, err
        except subprocess.TimeoutExpired:
            pass
        if stop.is_set() or time.monotonic() > deadline:
            process.kill()
            process.communicate()
            if stop.is_set():
                raise Interrupted()
            raise ClipFailure(FailureReason.TIMEOUT, f"ffmpeg did not finish within CLIP_TIMEOUT={timeout:g} s")


def _written_seconds(progress: str) -> float:
    """The output duration from ffmpeg's ``-progress`` report (its last out_time_us)."""
    micros = 0
    for line in progress.splitlines():
        if line.startswith("out_time_us="):
            value = line.partition("=")[2]
            if value.lstrip("-").isdigit():
                micros = max(0, int(value))
    return micros / 1_000_000


def _check(returncode: int, stderr: str, seconds: float, segment: Segment, out: Path) -> None:
    for phrase in _DISK_FULL:
        if phrase in stderr:
            raise OutputUnwritableError(
                f"{out.parent}: {phrase.lower()}; free space, then rerun: finished clips are kept")
    problem, evidence = _diagnose(stderr)
    if returncode != 0:
        raise ClipFailure(problem or FailureReason.FFMPEG_ERROR,
                          evidence or _last_line(stderr) or f"ffmpeg exited with {returncode}")
    if seconds < segment.duration - SHORT_TOLERANCE_S:
        if problem is not None:  # cut short by the connection, not by the video's end
            raise ClipFailure(problem, f"source broke off after {seconds:.2f} s: {evidence}")
        if segment.open_end and seconds >= MIN_OPEN_END_S:
            return  # the list gave no end: the clip ends where the video does
        raise ClipFailure(
            FailureReason.WINDOW_OUT_OF_RANGE,
            f"only {seconds:.2f} s of the {segment.duration:g} s window exist in the source",
        )


def _diagnose(stderr: str) -> tuple[FailureReason | None, str]:
    """The reason ffmpeg's messages point to, and the line that says so."""
    status = _HTTP_STATUS.search(stderr)
    if status:
        return reason_for_http_status(int(status.group(1))), _line_at(stderr, status.start())
    for phrase, reason in _STDERR_REASONS:
        index = stderr.find(phrase)
        if index >= 0:
            return reason, _line_at(stderr, index)
    return None, ""


def _line_at(text: str, index: int) -> str:
    start = text.rfind("\n", 0, index) + 1
    end = text.find("\n", index)
    return _CONTEXT.sub("", text[start : end if end >= 0 else len(text)].strip())


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return _CONTEXT.sub("", lines[-1]) if lines else ""
