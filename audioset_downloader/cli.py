"""The command line: read settings, check them, run every CSV, print the summary.

``python AudioDownloader.py`` reads download_configs.py; ``--config PATH`` reads
another file of the same constants; flags override single values. Exit status:
0 when the run completed (failed clips are listed in failed.csv), 2 for a
configuration or usage error, 130 on Ctrl-C, 1 when a run could not go on.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import multiprocessing
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from audioset_downloader import __version__
from audioset_downloader.doctor import run_doctor
from audioset_downloader.engine import dask_engine
from audioset_downloader.engine.progress import duration, summary_table
from audioset_downloader.engine.runner import load_ontology, plan_csv, run_csv
from audioset_downloader.engine.shared import hosted
from audioset_downloader.errors import (
    EXIT_FATAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    DownloaderError,
)
from audioset_downloader.fetch.backends import check_backend_settings, load_backend
from audioset_downloader.fetch.cutter import find_ffmpeg
from audioset_downloader.fetch.measure import SILENT_CLIPS_SAID
from audioset_downloader.fetch.mirrors import open_mirrors
from audioset_downloader.fetch.mirrors.audit import require_numpy
from audioset_downloader.fetch.mirrors.source import measured_throughput
from audioset_downloader.finished import merge_all, report_all, status_all, verify_all
from audioset_downloader.inputs.cookies import load_cookies
from audioset_downloader.inputs.files import input_file_problem
from audioset_downloader.inputs.lists import count_labels, label_filter, list_format
from audioset_downloader.inputs.settings import AUDIO_FORMATS, BACKEND_NAMES, ENGINES, LAYOUTS, Settings, load_settings
from audioset_downloader.outputs import parquet_files
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.reuse import SharedWindows
from audioset_downloader.outputs.storage import Store
from audioset_downloader.outputs.store_lock import holding
from audioset_downloader.outputs.summary import CsvSummary
from audioset_downloader.pacing.book import Book
from audioset_downloader.pacing.learned import LEARNED_FILE, learned_lines, new_book, planned_per_minute, save_learned
from audioset_downloader.redact import redact

CONFIG_FILE_NAME = "download_configs.py"

# flag destination -> config constant it overrides
_OVERRIDES = {
    "csv": "CSV_FILE_NAMES",
    "output_dir": "OUTPUT_DIR",
    "layout": "OUTPUT_LAYOUT",
    "backend": "BACKEND",
    "timer": "TIMER",
    "workers": "WORKERS",
    "audio_format": "AUDIO_FORMAT",
    "sample_rate": "SAMPLE_RATE",
    "channels": "CHANNELS",
    "url_format": "YTB_URL_FORMAT",
    "highest_quality": "DOWN_HIGHEST_QUALITY",
    "remove_existing": "REMOVE_EXIST_DOWNLOADS",
    "clip_timeout": "CLIP_TIMEOUT",
    "labels": "LABELS",
    "proxy": "PROXY",
    "cookies": "COOKIES_FILE",
    "video": "VIDEO",
    "engine": "ENGINE",
    "shard": "SHARD",
    "fallback": "FALLBACK_BACKENDS",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="AudioDownloader.py",
        description="Download the audio of AudioSet segments, cut to their windows.",
        epilog="Settings come from download_configs.py; each flag overrides one of them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", type=Path, metavar="PATH",
                        help=f"file of settings constants (default: {CONFIG_FILE_NAME})")
    modes = parser.add_argument_group("instead of downloading")
    modes.add_argument("--dry-run", action="store_true",
                       help="plan only: count valid, invalid, done and to-be-attempted rows per CSV")
    modes.add_argument("--status", action="store_true",
                       help="is a run going on in OUTPUT_DIR, how far, how fast, which identities are blocked "
                            "and until when (reads OUTPUT_DIR only)")
    modes.add_argument("--json", action="store_true", help="with --status: the same figures as JSON")
    modes.add_argument("--verify", action="store_true",
                       help="check every clip listed in split-pos.csv: present, decodes, right length, rate, channels")
    modes.add_argument("--repair", action="store_true",
                       help="with --verify: drop broken rows and files so that a rerun fetches them again")
    modes.add_argument("--merge", nargs="+", metavar="DIR",
                       help="merge the outputs of other runs (shards, machines) into OUTPUT_DIR, without duplicates")
    modes.add_argument("--doctor", action="store_true",
                       help="check ffmpeg, the backends, yt-dlp's JS runtime, cookies, proxy and OUTPUT_DIR, "
                            "with fixes")
    modes.add_argument("--online", action="store_true",
                       help="with --doctor: also resolve and cut one second of a public YouTube video per backend")
    modes.add_argument("--report", action="store_true",
                       help="per class: segments, written, failed by kind, availability (X.report.csv and .png)")
    modes.add_argument("--list-labels", nargs="?", const="", metavar="TEXT",
                       help="list AudioSet classes (matching TEXT) with how many segments of each CSV carry them")
    what = parser.add_argument_group("what to download")
    what.add_argument("--csv", action="append", metavar="PATH",
                      help="a segments CSV; repeat for several (CSV_FILE_NAMES)")
    what.add_argument("--timer", type=int, metavar="N", help="attempt at most N+1 clips per CSV; 0: all (TIMER)")
    what.add_argument("--label", dest="labels", action="append", metavar="NAME",
                      help="only segments carrying this class (name or MID); repeat for several (LABELS)")
    what.add_argument("--shard", metavar="K/N",
                      help="only the videos of shard K of N (stable hash of YTID), e.g. 0/3 on the first of 3 machines")
    what.add_argument("--remove-existing", action="store_true", default=None,
                      help="delete each CSV's earlier outputs first (REMOVE_EXIST_DOWNLOADS)")
    how = parser.add_argument_group("how to fetch")
    how.add_argument("--backend", choices=BACKEND_NAMES, help="what resolves a YTID to media (BACKEND)")
    how.add_argument("--fallback", action="append", metavar="NAME",
                     help="a backend to try when BACKEND fails for its own reasons; repeat for several "
                          "(FALLBACK_BACKENDS)")
    how.add_argument("--url-format", metavar="URL", help="URL with {YTID} (YTB_URL_FORMAT)")
    how.add_argument("--highest-quality", action=argparse.BooleanOptionalAction, default=None,
                     help="pick the highest-bitrate audio stream (DOWN_HIGHEST_QUALITY)")
    how.add_argument("--engine", choices=ENGINES, help="local processes, or a Dask cluster (ENGINE)")
    how.add_argument("--workers", type=int, metavar="N", help="clips fetched at once per CSV (WORKERS)")
    how.add_argument("--proxy", metavar="URL", help="proxy for metadata and media requests (PROXY)")
    how.add_argument("--cookies", metavar="FILE", help="Netscape cookies.txt sent with every request (COOKIES_FILE)")
    how.add_argument("--clip-timeout", type=float, metavar="S",
                     help="give up on one clip after S seconds (CLIP_TIMEOUT)")
    out = parser.add_argument_group("what to write")
    out.add_argument("--output-dir", metavar="DIR", help="where clips and manifests go (OUTPUT_DIR)")
    out.add_argument("--layout", choices=LAYOUTS,
                     help="a file per clip, tar shards of CLIPS_PER_TAR clips, or parquet files of CLIPS_PER_FILE "
                          "(OUTPUT_LAYOUT)")
    out.add_argument("--format", dest="audio_format", choices=AUDIO_FORMATS, help="audio format (AUDIO_FORMAT)")
    out.add_argument("--sample-rate", type=int, metavar="HZ", help="resample to HZ (SAMPLE_RATE)")
    out.add_argument("--channels", type=int, metavar="N", help="mix to N channels (CHANNELS)")
    out.add_argument("--video", action=argparse.BooleanOptionalAction, default=None,
                     help="write mp4 with the picture, AAC audio (VIDEO)")
    return parser


def settings_from_args(args: argparse.Namespace, default_config: Path | None) -> Settings:
    overrides: dict[str, Any] = {}
    for dest, constant in _OVERRIDES.items():
        value = getattr(args, dest)
        if value is not None:
            overrides[constant] = value
    config = args.config or _default_config(default_config)
    return load_settings(config, overrides)


def _default_config(beside_script: Path | None) -> Path | None:
    for candidate in (Path.cwd() / CONFIG_FILE_NAME, beside_script):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def preflight(settings: Settings, dry_run: bool = False) -> None:
    """Everything that can be checked before any work, so a mistake costs nothing."""
    for index, path in enumerate(settings.csv_file_names):
        if (problem := input_file_problem(path)) == "does not exist":
            raise ConfigError(
                f"CSV_FILE_NAMES[{index}]: {path} does not exist (relative paths start at {Path.cwd()}); "
                "fix the path or download the CSV from research.google.com/audioset"
            )
        if problem is not None:
            raise ConfigError(f"CSV_FILE_NAMES[{index}]: {path} {problem}; name a segment CSV file")
        list_format(path, settings)  # a list of no known shape is refused before any work
    if settings.output_layout == "parquet":
        parquet_files.pyarrow()  # the layout's library, before any clip
    if settings.mirrors:  # a library missing, a repo gone, a gated repo, a folder of no known layout: said now
        open_mirrors(settings)  # indexed once here, so that each CSV's process finds the index cached
        if settings.mirror_audit:
            require_numpy()
    for index, folder in enumerate(settings.reuse_from):
        if isinstance(folder, str):  # another run's OUTPUT_DIR on object storage
            Store(folder, settings.storage_options, f"REUSE_FROM[{index}]").check(write=False)
        elif not folder.is_dir():
            raise ConfigError(f"REUSE_FROM[{index}]: {folder} is not a folder; name another run's OUTPUT_DIR")
    if settings.cookies_file is not None:
        load_cookies(settings.cookies_file)
    find_ffmpeg(settings.ffmpeg_binary)
    load_backend(settings)
    check_backend_settings(settings)
    if settings.engine == "dask":
        dask_engine.require_dask()
    ontology = load_ontology(settings)
    for path in settings.csv_file_names:
        label_filter(path, settings, ontology)  # an unknown label name fails here, before any work
    if settings.output_url is not None:
        Store(settings.output_url, settings.storage_options).check(write=not dry_run)
    if dry_run:
        return
    try:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"OUTPUT_DIR {settings.output_dir}: cannot create it ({exc.strerror})") from None
    if not os.access(settings.output_dir, os.W_OK):
        raise ConfigError(f"OUTPUT_DIR {settings.output_dir}: not writable; choose another folder")


def dry_run(settings: Settings) -> int:
    """Per CSV and in total: what a run would attempt now, and how long that takes at the run's pace."""
    _learned_from_store(settings)
    per_minute, source = planned_per_minute(settings)
    total = 0
    throughput = measured_throughput(settings.cache_folder) if settings.mirrors else None
    mirrored = 0
    for csv_path in settings.csv_file_names:
        summary = plan_csv(csv_path, settings)
        total += summary.attempted
        mirrored += summary.mirrored
        youtube = summary.attempted - summary.mirrored
        print(redact(f"{summary.plan_line()}; {_time_at(youtube, per_minute)}"
                     + (f" for its {youtube} windows not on a mirror; {_mirror_time(summary.mirrored, throughput)}"
                        if settings.mirrors else "")))
    print(redact(f"total: {total} clips to attempt; {_time_at(total - mirrored, per_minute)} "
                 + ("for those not on a mirror " if settings.mirrors else "")
                 + f"(all CSVs share the identities); pace: {source}"
                 + (f"; {_mirror_time(mirrored, throughput)}" if settings.mirrors else "")))
    if settings.requests_per_minute == "auto":
        for line in learned_lines(settings):
            print(redact(line))
    print(f"silent clips: {SILENT_CLIPS_SAID[settings.silent_clips]}")
    return EXIT_OK


def _mirror_time(clips: int, throughput: dict | None) -> str:
    """The mirrors' share of the time: their windows' bytes at the bandwidth a run last measured."""
    if not clips:
        return "no window from the mirrors"
    if throughput is None:
        return f"{clips} windows from the mirrors (their bandwidth is measured by the first run)"
    size = clips * throughput["bytes_per_clip"]
    seconds = size / throughput["bytes_per_s"]
    return (f"{clips} windows from the mirrors: about {size / 1e9:.2f} GB, {duration(seconds)} at the "
            f"{throughput['bytes_per_s'] / 1e6:.1f} MB/s last measured ({throughput.get('measured_utc', '')})")


def _time_at(clips: int, per_minute: float) -> str:
    if math.isinf(per_minute):
        return "time unknown: no pace set"
    return f"about {duration(60 * clips / per_minute)} at {per_minute:.1f} clips/min"


def _run_in_child(csv_path: Path, settings: Settings, position: int, book: Book, shared: SharedWindows | None) -> None:
    """A CSV's own process (one per CSV, as the original script did); the run's book and claims are shared."""
    try:
        run_csv(csv_path, settings, position=position, book=book, shared=shared)
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except DownloaderError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        sys.exit(exc.exit_code)


def run_all(settings: Settings) -> int:
    """Run each CSV, in this process when there is one, else one process each (or on Dask); with an OUTPUT_DIR
    on object storage, only while this run holds it."""
    if settings.output_url is None:
        return _run_all(settings)
    with holding(Store(settings.output_url, settings.storage_options), "a run"):
        return _run_all(settings)


def _run_all(settings: Settings) -> int:
    _learned_from_store(settings)
    if settings.engine == "dask":
        return run_on_dask(settings)
    if len(settings.csv_file_names) == 1:
        book = new_book(settings)
        try:
            summary = run_csv(settings.csv_file_names[0], settings, book=book)
            print(summary_table([summary]))
        finally:
            _close_book(settings, book)
        return EXIT_INTERRUPTED if summary.interrupted else EXIT_OK
    with hosted(settings) as (book, shared):
        try:
            return _run_processes(settings, book, shared)
        finally:
            _close_book(settings, book)


def _close_book(settings: Settings, book: Book) -> None:
    """Say how each identity did over the run, and keep the paces learnt for the next one."""
    stats = book.stats()
    for entry in stats:
        print(redact(entry.line()))
    with contextlib.suppress(OSError):  # a full disk has been reported already
        save_learned(settings.output_dir, stats)
        if settings.output_url is not None:  # for the next run, from whichever machine
            Store(settings.output_url, settings.storage_options).put_file(settings.output_dir / LEARNED_FILE,
                                                                          LEARNED_FILE)


def _learned_from_store(settings: Settings) -> None:
    """An OUTPUT_DIR on object storage: what earlier runs learnt of the identities, into the stage folder."""
    if settings.output_url is not None:
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        local = settings.output_dir / LEARNED_FILE
        if not Store(settings.output_url, settings.storage_options).get_file(LEARNED_FILE, local):
            local.unlink(missing_ok=True)  # the store is the truth: a stale copy here must not go up at the end


def _run_processes(settings: Settings, book: Book, shared: SharedWindows | None) -> int:
    """One process per CSV, all pacing their requests through one book, each window fetched by one of them."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_run_in_child, args=(path, settings, index, book, shared), name=path.stem)
        for index, path in enumerate(settings.csv_file_names)
    ]
    for process in processes:
        process.start()
    interrupted = False
    for process in processes:
        while process.is_alive():
            try:
                process.join()
            except KeyboardInterrupt:
                interrupted = True  # the children got it too and are stopping cleanly
    codes = [process.exitcode for process in processes]
    summaries = []
    for path, code in zip(settings.csv_file_names, codes, strict=True):
        summary = _finished_summary(settings, path, code)
        if summary is None:
            print(f"{path}: did not finish (exit code {code}); see its log in {settings.output_dir}")
        else:
            summaries.append(summary)
    if summaries:
        print(summary_table(summaries))
    if interrupted or EXIT_INTERRUPTED in codes:
        return EXIT_INTERRUPTED
    return max((code for code in codes if code), default=EXIT_OK)


def run_on_dask(settings: Settings) -> int:
    """ENGINE = "dask": this process drives, the cluster downloads; one CSV after another."""
    # Workers may run elsewhere or in another folder: every path they see is absolute.
    settings = replace(settings, output_dir=settings.output_dir.resolve(),
                       csv_file_names=tuple(path.resolve() for path in settings.csv_file_names))
    summaries: list[CsvSummary] = []
    client = dask_engine.connect(settings)
    book = None
    try:
        book = dask_engine.shared_book(client, settings)
        dispatch = dask_engine.DaskDispatch(client, settings.shard_size)
        for index, csv_path in enumerate(settings.csv_file_names):
            summaries.append(run_csv(csv_path, settings, position=index, dispatch=dispatch, book=book))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        print(summary_table(summaries))
        if book is not None:
            _close_book(settings, book)
        dask_engine.disconnect(client)
    return EXIT_OK


def _finished_summary(settings: Settings, csv_path: Path, code: int | None) -> CsvSummary | None:
    """The summary a CSV's process saved, if it finished (or was interrupted) cleanly."""
    summary_file = CsvOutputs.for_csv(settings.output_dir, csv_path).summary
    if code in (EXIT_OK, EXIT_INTERRUPTED) and summary_file.is_file():
        return CsvSummary.from_json(summary_file.read_text())
    return None


def list_labels(settings: Settings, text: str) -> int:
    ontology = load_ontology(settings)
    if ontology is None:
        raise ConfigError("ONTOLOGY_FILE: no ontology.json found; set ONTOLOGY_FILE to data/ontology.json")
    classes = ontology.search(text) if text else sorted(ontology.by_mid.values(), key=lambda c: c.name.lower())
    counts = {path.stem: count_labels(path, settings) for path in settings.csv_file_names if path.is_file()}
    width = max((len(c.name) for c in classes), default=4)
    print(f"{'MID':<13} {'name':<{width}} " + " ".join(f"{name:>{max(8, len(name))}}" for name in counts))
    for audio_class in classes:
        print(f"{audio_class.mid:<13} {audio_class.name:<{width}} "
              + " ".join(f"{counts[name][audio_class.mid]:>{max(8, len(name))}}" for name in counts))
    if not classes:
        print(f"no class matches {text!r}")
    return EXIT_OK


def run() -> None:
    """The ``audioset-download`` console script: the same as python AudioDownloader.py."""
    sys.exit(main())


def main(argv: list[str] | None = None, default_config: Path | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_args(args, default_config)
        if args.repair and not args.verify:
            raise ConfigError("--repair goes with --verify: python AudioDownloader.py --verify --repair")
        if args.online and not args.doctor:
            raise ConfigError("--online goes with --doctor: python AudioDownloader.py --doctor --online")
        if args.json and not args.status:
            raise ConfigError("--json goes with --status: python AudioDownloader.py --status --json")
        if args.status:
            return status_all(settings, args.json)
        if args.doctor:
            table, status = run_doctor(settings, args.online)
            print(redact(table))
            return status
        if args.list_labels is not None:
            return list_labels(settings, args.list_labels)
        if args.merge:
            return merge_all(settings, args.merge)
        preflight(settings, dry_run=args.dry_run or args.verify or args.report)
        if args.report:
            return report_all(settings)
        if args.verify:
            return verify_all(settings, args.repair)
        if args.dry_run:
            return dry_run(settings)
        return run_all(settings)
    except DownloaderError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted: manifests are consistent; run again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (| head): not an error. Python would complain again when
        # it flushes stdout at exit, so point stdout at nothing first.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        logging.getLogger(__name__).debug("fatal", exc_info=True)
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_FATAL
