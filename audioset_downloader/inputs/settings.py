"""The user's settings: one frozen dataclass, read from download_configs.py.

The config file is plain constants (``TIMER = 9``). It is parsed, not executed:
each value must be a literal, so a config copied from elsewhere cannot run code,
and every mistake is reported with its file, line and setting. Command-line flags
override single values afterwards and go through the same checks.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audioset_downloader.errors import ConfigError, NamedValueError
from audioset_downloader.inputs.files import input_file_problem
from audioset_downloader.inputs.identities import DEFAULT_NAME, Identity, check_identities, check_proxy

AUDIO_FORMATS = ("wav", "flac", "opus", "m4a")
SILENT_CLIPS = ("keep", "drop")
# What a clip file may end in: every AUDIO_FORMAT, and mp4 with VIDEO (fetch/cutter.py checks they agree).
CLIP_EXTENSIONS = (*AUDIO_FORMATS, "mp4")
# The backends' names; fetch/backends/__init__.py maps each to its module (and checks it has them all).
BACKEND_NAMES = ("pytube", "yt-dlp", "pytubefix", "direct")
# Backends that resolve a YouTube video, and so can stand in for one another.
YOUTUBE_BACKENDS = ("pytube", "yt-dlp", "pytubefix")
YOUTUBE_HOSTS = ("youtube.com", "youtu.be", "youtube-nocookie.com")
ENGINES = ("local", "dask")
LAYOUTS = ("files", "webdataset", "parquet")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
STORE_SCHEMES = ("s3", "s3a", "gs", "gcs")  # object storage an OUTPUT_DIR or REUSE_FROM may name (outputs/storage.py)
MIRROR_LAYOUTS = ("parquet", "webdataset", "files")
# A parquet output file's size CLIPS_PER_FILE aims at by default: big enough that a 2 M-clip list is a few thousand
# files (the Hub and the viewer are at ease with that), small enough to go up and be read back whole in seconds.
FILE_BYTES = 256 << 20  # how a mirror holds its copies (fetch/mirrors/)
_HUB_REPO = re.compile(r"hf://datasets/([A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(?:@([^/@]+))?(/.*)?")


@dataclass(frozen=True)
class Columns:
    """COLUMNS: which columns of a list with a header hold the YTID and the window's times."""

    ytid: str
    start: str
    end: str | None = None  # None: the window is CLIP_SECONDS from the start


@dataclass(frozen=True)
class MirrorSpec:
    """One entry of MIRRORS: where a public copy of the audio is, how it holds it, and at which revision."""

    url: str  # hf://datasets/owner/name[/path], s3://bucket/prefix, gs://..., or a local folder
    layout: str | None = None  # one of MIRROR_LAYOUTS; None: recognised from its files
    revision: str | None = None  # a Hub revision (branch, tag or commit); None: the URL's, else "main"

    @property
    def is_hub(self) -> bool:
        return self.url.startswith("hf://")


@dataclass(frozen=True)
class Settings:
    """Every setting, with the default used when download_configs.py omits it."""

    csv_file_names: tuple[Path, ...] = (Path("data/eval_segments.csv"),)
    ytb_url_format: str = "https://www.youtube.com/watch?v={YTID}"
    timer: int = 9
    down_highest_quality: bool = False
    remove_exist_downloads: bool = False
    output_dir: Path = Path("downloads")  # with an OUTPUT_DIR URL: the local stage folder (outputs/storage.py)
    output_url: str | None = None  # OUTPUT_DIR when it is object storage: s3://bucket/prefix, gs://...
    storage_options: dict[str, Any] = field(default_factory=dict)  # passed to fsspec with OUTPUT_DIR's URL
    output_layout: str = "files"  # or "webdataset": tar shards (shards.py); or "parquet" (parquet_files.py)
    clips_per_tar: int = 1000
    clips_per_file: int | None = None  # parquet: clips per file; None: as many as make about FILE_BYTES
    backend: str = "pytube"
    # Tried in turn when BACKEND fails for reasons of its own (not the video's); see failover.py.
    fallback_backends: tuple[str, ...] = ("yt-dlp", "pytubefix")
    audio_format: str = "wav"
    sample_rate: int | None = None
    channels: int | None = None
    workers: int = 8
    clip_timeout: float = 120.0
    ffmpeg_binary: str | None = None
    retries: int = 3
    retry_backoff: float = 2.0
    retry_failed: bool = False
    # YouTube blocks a throttled session for up to an hour (yt-dlp wiki, Extractors): wait past that.
    max_backoff_minutes: float = 90.0
    requests_per_minute: float | str | None = "auto"  # per identity; "auto": learnt (pacing/book.py); None: no cap
    cookies_file: Path | None = None
    proxy: str | None = None
    identities: tuple[Identity, ...] = ()  # (): one identity of PROXY and COOKIES_FILE
    labels: tuple[str, ...] = ()
    include_child_labels: bool = False
    exclude_labels: tuple[str, ...] = ()
    ontology_file: Path | None = None
    video: bool = False
    engine: str = "local"
    dask_scheduler: str = "local"
    dask_workers: int = 2
    per_machine_identity: bool = False  # with ENGINE = "dask": each worker machine's address an identity of its own
    shard_size: int = 1000
    shard: tuple[int, int] | None = None  # (K, N): only the rows of shard K of N
    cache_dir: Path | None = None  # None: the user's cache folder (see cache_folder)
    ytdlp_options: dict[str, Any] = field(default_factory=dict)  # merged into yt-dlp's own options
    pytubefix_client: str = "VISION_OS"
    clip_seconds: float = 10.0  # a window a list gives no end for lasts this long (AudioCaps, VGGSound, ...)
    columns: Columns | None = None  # a list of no known shape: where its YTID and times are
    reuse_from: tuple[Path | str, ...] = ()  # other OUTPUT_DIRs (folders or URLs) whose clips are taken, not fetched
    silent_clips: str = "keep"  # "keep": written and flagged; "drop": not kept, failed as "silent"
    mirrors: tuple[MirrorSpec, ...] = ()  # public copies a window is taken from before YouTube (fetch/mirrors/)
    mirror_audit: int = 3  # windows of each mirror also fetched from YouTube, to measure the copy against
    mirror_workers: int = 8  # threads reading and converting mirrors' copies, beside the YouTube workers

    def url_for(self, ytid: str) -> str:
        return self.ytb_url_format.replace("{YTID}", ytid)

    @property
    def clip_format(self) -> str:
        """What a clip is written as: AUDIO_FORMAT, or mp4 (video with AAC audio) when VIDEO."""
        return "mp4" if self.video else self.audio_format

    @property
    def backend_chain(self) -> tuple[str, ...]:
        """BACKEND, then each fallback not already in the chain; "direct" has no stand-ins."""
        if self.backend == "direct":
            return (self.backend,)
        return tuple(dict.fromkeys((self.backend, *self.fallback_backends)))

    @property
    def youtube_limits(self) -> bool:
        """Whether YouTube's limits per identity apply: pytube and pytubefix always ask YouTube, yt-dlp when
        the URLs are YouTube's (else its generic extractor reads a mirror), "direct" never."""
        if self.backend != "yt-dlp":
            return self.backend != "direct"
        host = (urlsplit(self.ytb_url_format.replace("{YTID}", "x")).hostname or "").lower()
        return host in YOUTUBE_HOSTS or host.endswith(".youtube.com")

    @property
    def cache_folder(self) -> Path:
        """CACHE_DIR, else $XDG_CACHE_HOME/audioset-downloader (~/.cache/audioset-downloader)."""
        if self.cache_dir is not None:
            return self.cache_dir
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "audioset-downloader"

    @property
    def tar_size(self) -> int | None:
        """Clips per shard in a packed layout (a tar in webdataset's, a file in parquet's); None in the files layout."""
        if self.output_layout == "webdataset":
            return self.clips_per_tar
        if self.output_layout == "parquet":
            return self.clips_per_file or max(10, min(10_000, round(FILE_BYTES / self.clip_bytes)))
        return None

    @property
    def shard_suffix(self) -> str:
        """What a shard of clips is: "tar", "parquet"; "" in the files layout."""
        return {"webdataset": "tar", "parquet": "parquet"}.get(self.output_layout, "")

    @property
    def clip_bytes(self) -> float:
        """A clip's size as its format makes it, for a window of CLIP_SECONDS: what a parquet file's clips are
        counted from. PCM for WAV; FLAC about 60 % of it; Opus and AAC at their bitrates (fetch/cutter.py)."""
        pcm = (self.sample_rate or 48000) * (self.channels or 2) * 2 * self.clip_seconds
        rates = {"wav": pcm, "flac": 0.6 * pcm, "opus": 128_000 / 8 * self.clip_seconds,
                 "m4a": 192_000 / 8 * self.clip_seconds}
        return rates.get(self.clip_format, 192_000 / 8 * self.clip_seconds)

    @property
    def identity_list(self) -> tuple[Identity, ...]:
        """IDENTITIES, or the one identity PROXY and COOKIES_FILE make."""
        return self.identities or (Identity(DEFAULT_NAME, self.proxy, self.cookies_file),)

    @property
    def machine_identities(self) -> bool:
        """Each Dask worker machine is an identity of its own, added as it first asks for a turn."""
        return self.per_machine_identity and self.engine == "dask"

    @property
    def shared_identities(self) -> tuple[Identity, ...]:
        """The identities every machine of the run may go out through: with per-machine identities only
        IDENTITIES (each machine adds its own address), else identity_list."""
        return self.identities if self.machine_identities else self.identity_list

    def for_identity(self, identity: Identity) -> Settings:
        """These settings as one identity's requests see them: its proxy, its cookies."""
        return replace(self, proxy=identity.proxy, cookies_file=identity.cookies_file)

    @property
    def clip_limit(self) -> int | None:
        """Clips attempted per CSV: the seed's TIMER=3 attempts 4; TIMER <= 0 is no limit."""
        return self.timer + 1 if self.timer > 0 else None


# ---------------------------------------------------------------- checks
# Each check takes the raw value and returns the converted one, or raises
# ValueError with what is expected (the caller adds where it came from).


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"must be a whole number from {low} to {high}")
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be True or False")
    return value


def _timer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number (TIMER=3 attempts 4 clips; 0 or less: no limit)")
    return value


def _positive(value: Any) -> float:
    """A positive finite number (seconds, minutes or a rate: the constant's name says which)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ValueError("must be a number above 0")
    if isinstance(value, int) and value.bit_length() > 64 or not math.isfinite(value):  # float(10**400) overflows
        raise ValueError("must be a number above 0, and not that large")
    return float(value)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    if "\x00" in value:  # no path, URL or name holds one; the OS would refuse it later, less clearly
        raise ValueError("must not hold a NUL character")
    return value


def _path(value: Any) -> Path:
    return Path(_text(value))


def _output_dir(value: Any) -> Path | str:
    """A local folder, or object storage as an fsspec URL with a bucket: s3://bucket/prefix, gs://bucket."""
    text = _text(value)
    if not _URL.match(text):
        return Path(text)
    scheme, _, rest = text.partition("://")
    bucket = rest.partition("/")[0]
    if scheme not in STORE_SCHEMES:
        raise ValueError(f"is a {scheme}:// URL, a store this tool does not write to; use s3://bucket/prefix or "
                         "gs://bucket/prefix, or a local folder")
    if scheme.lower() != scheme or not bucket or any(part in ("", ".", "..") for part in rest.rstrip("/").split("/")):
        raise ValueError('must be a local folder or a URL naming a bucket, e.g. "s3://my-bucket/audioset"')
    return text.rstrip("/")


def _storage_options(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) and key.isidentifier() for key in value):
        raise NamedValueError('must be a dict of fsspec options, e.g. {"endpoint_url": "http://minio:9000"}')
    return dict(value)


def stage_folder(cache: Path, url: str, options: Mapping[str, Any] | None = None) -> Path:
    """Where a run whose OUTPUT_DIR is ``url`` keeps its local copies: one folder per store and URL (the same
    bucket name on two endpoints is two stores)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", url)[:80]
    endpoint = store_endpoint(url, options or {})
    key = f"{endpoint} {url}" if endpoint else url
    return cache / "stage" / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def store_endpoint(url: str, options: Mapping[str, Any]) -> str:
    """The endpoint a URL's library will reach, where it is not the scheme's own: STORAGE_OPTIONS' endpoint_url
    (or client_kwargs'), else AWS_ENDPOINT_URL for s3://; "" for the default."""
    client = options.get("client_kwargs")
    given = options.get("endpoint_url") or (client.get("endpoint_url") if isinstance(client, dict) else None)
    if given:
        return str(given)
    return os.environ.get("AWS_ENDPOINT_URL", "") if url.startswith(("s3://", "s3a://")) else ""


def _csv_paths(value: Any) -> tuple[Path, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError('must be a list of CSV paths, e.g. ["data/eval_segments.csv"]')
    paths = tuple(_path(item) for item in value)
    for path in paths:
        # The file name names the outputs (OUTPUT_DIR/<name>/...): keep it a plain name.
        if not _PLAIN_NAME.fullmatch(path.stem):
            raise ValueError(f"entry {str(path)!r}: rename the file to letters, digits, '.', '_' or '-'")
    stems = [path.stem for path in paths]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise ValueError(f"names {repeated[0]!r} twice; each CSV's outputs are named after its file name")
    return paths


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError('must be a list of label names or MIDs, e.g. ["Dog", "/m/0bt9lr"]')
    return tuple(v.strip() for v in value)


def _pace(value: Any) -> float | str | None:
    if value == "auto" or value is None:
        return value
    try:
        return _positive(value)
    except ValueError:
        raise ValueError('must be "auto" (learn each identity\'s limit), clip attempts per minute per identity '
                         "(a number above 0), or None (no cap)") from None


def _clip_seconds(value: Any) -> float:
    seconds = _positive(value)
    if seconds > 3600:
        raise ValueError("must be the seconds of a window, at most 3600 (AudioSet's are 10)")
    return seconds


def _columns(value: Any) -> Columns:
    example = '{"ytid": "video_id", "start": "t0", "end": None}'
    if not isinstance(value, dict) or not {"ytid", "start"} <= set(value) or not set(value) <= {"ytid", "start", "end"}:
        raise ValueError(f"must be a dict with keys ytid, start and, if the list has one, end, e.g. {example}")
    names = [value["ytid"], value["start"], value.get("end")]
    if not all(isinstance(name, str) and name.strip() and "\x00" not in name for name in names[:2]) or not (
            names[2] is None or isinstance(names[2], str) and names[2].strip()):
        raise ValueError(f"must name each column by its header text, e.g. {example}")
    return Columns(*(name.strip() if isinstance(name, str) else None for name in names))


def _reuse_sources(value: Any) -> tuple[Path | str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of folders or URLs, e.g. ["/data/audioset"] (other runs\' OUTPUT_DIR)')
    return tuple(_output_dir(item) for item in value)


def _mirrors(value: Any) -> tuple[MirrorSpec, ...]:
    example = '["hf://datasets/agkphysics/AudioSet"] or [{"url": "/data/panns", "layout": "files"}]'
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of URLs or folders, e.g. {example}")
    specs = []
    for index, item in enumerate(value):
        entry = {"url": item} if isinstance(item, str) else item
        if not isinstance(entry, dict) or "url" not in entry or not set(entry) <= {"url", "layout", "revision"}:
            raise ValueError(f"entry {index}: must be a URL string or a dict with url and optionally layout and "
                             f"revision, e.g. {example}")
        try:
            url = _text(entry["url"]).rstrip("/") or "/"
            layout = entry.get("layout")
            revision = entry.get("revision")
            if layout is not None and layout not in MIRROR_LAYOUTS:
                raise ValueError(f"layout must be one of {', '.join(MIRROR_LAYOUTS)} (or left out: recognised "
                                 "from the files)")
            if revision is not None and (not isinstance(revision, str) or not re.fullmatch(r"[\w./-]{1,200}",
                                                                                           revision)):
                raise ValueError("revision must be a branch, tag or commit of the repo, e.g. \"main\"")
            if _URL.match(url):
                scheme = url.partition("://")[0]
                if scheme == "hf":
                    match = _HUB_REPO.fullmatch(url)
                    if match is None or ".." in url.split("/"):
                        raise ValueError("must be hf://datasets/owner/name, with @revision or a folder after it "
                                         "if wanted")
                    if revision is not None and match.group(2) and match.group(2) != revision:
                        raise ValueError(f"names revision {match.group(2)!r} in the URL and {revision!r} apart")
                else:
                    url = _output_dir(url)  # type: ignore[assignment]  # s3://, gs://: as OUTPUT_DIR takes them
            elif revision is not None:
                raise ValueError("revision is for a Hub repo (hf://datasets/...) only")
        except ValueError as exc:
            raise ValueError(f"entry {index}: {exc}") from None
        specs.append(MirrorSpec(url, layout, revision))
    urls = [spec.url for spec in specs]
    if len(set(urls)) != len(urls):
        raise ValueError("names one mirror twice")
    return tuple(specs)


def _url_format(value: Any) -> str:
    text = _text(value)
    if text.count("{YTID}") != 1:
        raise ValueError('must contain {YTID} once, e.g. "https://www.youtube.com/watch?v={YTID}"')
    rest = text.replace("{YTID}", "")
    if "{" in rest or "}" in rest:
        raise ValueError("may hold no braces other than {YTID}")
    if urlsplit(text).scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    return text


def _fallbacks(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"must be a list of backend names from {', '.join(map(repr, YOUTUBE_BACKENDS))}, or []")
    names = tuple(_choice(YOUTUBE_BACKENDS)(item) for item in value)
    if len(set(names)) != len(names):
        raise ValueError("names a backend twice")
    return names


def _options(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(key, str) and key for key in value):
        raise ValueError('must be a dict of yt-dlp options, e.g. {"extractor_args": {"youtube": {...}}}')
    return value


def _client_name(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", value):
        raise ValueError('must be a pytubefix client name in capitals, e.g. "VISION_OS" or "WEB"')
    return value


def _scheduler(value: Any) -> str:
    text = _text(value)
    parts = urlsplit(text)
    if text == "local" or (parts.scheme in ("tcp", "tls") and parts.hostname and parts.port):
        return text
    raise ValueError('must be "local" (a cluster on this machine) or a scheduler address like "tcp://host:8786"')


def _shard(value: Any) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", value) if isinstance(value, str) else None
    if match is None or not int(match.group(1)) < int(match.group(2)):
        raise ValueError('must be "K/N" with 0 <= K < N, e.g. "0/3" for the first of three shards')
    return int(match.group(1)), int(match.group(2))


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, str) and value.lower() in options:
            return value.lower()
        hint = difflib.get_close_matches(str(value), options, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        raise ValueError(f"must be one of {', '.join(repr(o) for o in options)}{suggestion}")

    return check


# Config constant -> (Settings field, check). The order is the README's order.
CONSTANTS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "CSV_FILE_NAMES": ("csv_file_names", _csv_paths),
    "YTB_URL_FORMAT": ("ytb_url_format", _url_format),
    "TIMER": ("timer", _timer),
    "DOWN_HIGHEST_QUALITY": ("down_highest_quality", _flag),
    "REMOVE_EXIST_DOWNLOADS": ("remove_exist_downloads", _flag),
    "OUTPUT_DIR": ("output_dir", _output_dir),
    "STORAGE_OPTIONS": ("storage_options", _storage_options),
    "REUSE_FROM": ("reuse_from", _reuse_sources),
    "MIRRORS": ("mirrors", _mirrors),
    "MIRROR_AUDIT": ("mirror_audit", _whole(0, 1000)),
    "MIRROR_WORKERS": ("mirror_workers", _whole(1, 256)),
    "CLIP_SECONDS": ("clip_seconds", _clip_seconds),
    "COLUMNS": ("columns", _optional(_columns)),
    "OUTPUT_LAYOUT": ("output_layout", _choice(LAYOUTS)),
    "CLIPS_PER_TAR": ("clips_per_tar", _whole(1, 1_000_000)),
    "CLIPS_PER_FILE": ("clips_per_file", _optional(_whole(1, 100_000))),
    "BACKEND": ("backend", _choice(BACKEND_NAMES)),
    "FALLBACK_BACKENDS": ("fallback_backends", _fallbacks),
    "AUDIO_FORMAT": ("audio_format", _choice(AUDIO_FORMATS)),
    "SAMPLE_RATE": ("sample_rate", _optional(_whole(1000, 384000))),
    "CHANNELS": ("channels", _optional(_whole(1, 8))),
    "WORKERS": ("workers", _whole(1, 256)),
    "CLIP_TIMEOUT": ("clip_timeout", _positive),
    "FFMPEG_BINARY": ("ffmpeg_binary", _optional(_text)),
    "RETRIES": ("retries", _whole(0, 20)),
    "RETRY_BACKOFF": ("retry_backoff", _positive),
    "RETRY_FAILED": ("retry_failed", _flag),
    "MAX_BACKOFF_MINUTES": ("max_backoff_minutes", _positive),
    "REQUESTS_PER_MINUTE": ("requests_per_minute", _pace),
    "COOKIES_FILE": ("cookies_file", _optional(_path)),
    "PROXY": ("proxy", _optional(check_proxy)),
    "IDENTITIES": ("identities", check_identities),
    "LABELS": ("labels", _names),
    "INCLUDE_CHILD_LABELS": ("include_child_labels", _flag),
    "EXCLUDE_LABELS": ("exclude_labels", _names),
    "ONTOLOGY_FILE": ("ontology_file", _optional(_path)),
    "VIDEO": ("video", _flag),
    "SILENT_CLIPS": ("silent_clips", _choice(SILENT_CLIPS)),
    "ENGINE": ("engine", _choice(ENGINES)),
    "DASK_SCHEDULER": ("dask_scheduler", _scheduler),
    "DASK_WORKERS": ("dask_workers", _whole(1, 1024)),
    "PER_MACHINE_IDENTITY": ("per_machine_identity", _flag),
    "SHARD_SIZE": ("shard_size", _whole(1, 1_000_000)),
    "SHARD": ("shard", _optional(_shard)),
    "CACHE_DIR": ("cache_dir", _optional(_path)),
    "YTDLP_OPTIONS": ("ytdlp_options", _options),
    "PYTUBEFIX_CLIENT": ("pytubefix_client", _client_name),
}
_FIELD_TO_CONSTANT = {field: name for name, (field, _) in CONSTANTS.items()}
_DERIVED = {"output_url"}  # set from OUTPUT_DIR
assert set(_FIELD_TO_CONSTANT) | _DERIVED == {f.name for f in fields(Settings)}, "every setting needs a constant"


def read_config_file(path: Path) -> dict[str, tuple[Any, int]]:
    """The constants of a config file: name -> (literal value, line number)."""
    if (problem := input_file_problem(path)) is not None:
        raise ConfigError(f"{path}: the config {problem}; pass --config with a settings file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config ({exc.strerror}); pass --config with an existing file") from exc
    try:
        source = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{path}:{line}: byte 0x{data[exc.start]:02x} is not UTF-8; save the file as UTF-8") from None
    if "\x00" in source:
        line = source.count("\n", 0, source.index("\x00")) + 1
        raise ConfigError(f"{path}:{line}: holds a NUL byte; is this the settings file?")
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid Python ({exc.msg}); fix the line") from exc
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. an int of 5000 digits, nesting too deep
        raise ConfigError(f"{path}: not a settings file Python can read ({type(exc).__name__}); fix it") from None
    found: dict[str, tuple[Any, int]] = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # a docstring or a bare string: harmless
        target, value_node = _assignment(node)
        if target is None:
            raise ConfigError(
                f"{path}:{node.lineno}: only constants are allowed (NAME = value); remove this statement"
            )
        try:
            value = ast.literal_eval(value_node)
        except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError) as exc:  # {[1]: 2} is TypeError
            raise ConfigError(
                f"{path}:{node.lineno}: {target} must be a literal (number, string, list, True/False/None)"
            ) from exc
        found[target] = (value, node.lineno)
    return found


def _assignment(node: ast.stmt) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return node.target.id, node.value
    return None, None


def unknown_name_message(name: str) -> str:
    hint = difflib.get_close_matches(name, CONSTANTS, n=1)
    return f"did you mean {hint[0]}?" if hint else f"known settings: {', '.join(CONSTANTS)}"


def build_settings(
    config: Mapping[str, tuple[Any, int]],
    overrides: Mapping[str, Any],
    config_path: Path | None = None,
) -> Settings:
    """Check every constant of the config, then every command-line override."""
    values: dict[str, Any] = {}
    where = str(config_path) if config_path else "config"
    for name, (raw, line) in config.items():
        if name not in CONSTANTS:
            raise ConfigError(f"{where}:{line}: unknown setting {name}; {unknown_name_message(name)}")
        field, check = CONSTANTS[name]
        values[field] = _checked(name, check, raw, f"{where}:{line}")
    for name, raw in overrides.items():
        field, check = CONSTANTS[name]
        values[field] = _checked(name, check, raw, "command line")
    settings = replace(Settings(), **values)
    if isinstance(settings.output_dir, str):  # a URL: the run works in a stage folder of its own
        settings = replace(settings, output_url=settings.output_dir,
                           output_dir=stage_folder(settings.cache_folder, settings.output_dir,
                                                   settings.storage_options))
    if settings.per_machine_identity and (settings.proxy or settings.cookies_file):
        raise ConfigError(f"{where}: PER_MACHINE_IDENTITY = True with {'PROXY' if settings.proxy else 'COOKIES_FILE'}: "
                          "every machine would go out as that one identity; name it in IDENTITIES instead (each "
                          "machine then adds its own address beside it), or set PER_MACHINE_IDENTITY = False")
    return settings


def _checked(name: str, check: Callable[[Any], Any], raw: Any, where: str) -> Any:
    try:
        return check(raw)
    except ValueError as exc:
        shown = "" if isinstance(exc, NamedValueError) else f" (got {raw!r})"
        raise ConfigError(f"{where}: {name} {exc}{shown}") from None


def load_settings(config_path: Path | None, overrides: Mapping[str, Any] | None = None) -> Settings:
    config = read_config_file(config_path) if config_path is not None else {}
    return build_settings(config, overrides or {}, config_path)
