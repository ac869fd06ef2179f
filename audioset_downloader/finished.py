"""What the command line does with outputs already written: --status, --report, --verify (--repair), --merge.

Each works on OUTPUT_DIR as it is or, when OUTPUT_DIR is object storage, on a copy of its objects
in a folder of its own (``on_copy``), putting back up what it changed while it holds the URL's lock.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from audioset_downloader.engine.runner import exclusive, load_ontology
from audioset_downloader.errors import EXIT_FATAL, EXIT_OK, ConfigError, DownloaderError, OutputLockedError
from audioset_downloader.inputs.lists import NotesOf, count_windows, list_format
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs import report
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import Ledger
from audioset_downloader.outputs.merge import ListNotes, csv_names, merge_csv
from audioset_downloader.outputs.stage import StoreCopy
from audioset_downloader.outputs.status import csv_status, heartbeat_running, identity_status, status_lines
from audioset_downloader.outputs.storage import Store
from audioset_downloader.outputs.store_lock import holding
from audioset_downloader.outputs.verify import verify_csv
from audioset_downloader.redact import redact


@contextlib.contextmanager
def on_copy(settings: Settings, whole: bool, push: bool = False,
            names: list[str] | None = None) -> Iterator[tuple[Settings, dict[str, set[str]]]]:
    """An OUTPUT_DIR on object storage: the command works on a copy of its objects in a folder of its own (every
    object of the clip folders when ``whole``), and what it changed there goes back up when ``push``. A local
    OUTPUT_DIR: as it is. With the settings, what each CSV's clip folder holds on the store (by name)."""
    if settings.output_url is None:
        yield settings, {}
        return
    store = Store(settings.output_url, settings.storage_options)
    store.check(write=push)  # one line for a store that cannot be used, before anything is read
    with contextlib.ExitStack() as held, tempfile.TemporaryDirectory(prefix="audioset-copy-") as folder:
        if push:  # a command that changes the outputs holds the URL, as a run does
            held.enter_context(holding(store, "a command that changes the outputs"))
        copy = StoreCopy(store, Path(folder))
        names = names if names is not None else [path.stem for path in settings.csv_file_names]
        copy.pull(names, whole)
        going = [name for name in names if push and heartbeat_running(CsvOutputs(Path(folder), name))]
        if going:  # a run of a version that took no lock on the store
            raise OutputLockedError(f"{settings.output_url}/{going[0]}: a run is writing these outputs (its "
                                    "heartbeat is fresh); wait for it to finish, then rerun this command")
        yield replace(settings, output_dir=Path(folder), output_url=None), copy.listed
        if push:
            copy.push()


def status_all(settings: Settings, as_json: bool) -> int:
    """--status: what the outputs say of the run (going on or not), per CSV and per identity; exit 0 either way."""
    remote = settings.output_url is not None
    csvs = []
    with on_copy(settings, whole=False) as (settings, _):
        for path in settings.csv_file_names:
            try:
                listed = count_windows(path, settings)
            except (OSError, DownloaderError):
                listed = 0  # the list moved away: the outputs still say what was done
            csvs.append(csv_status(CsvOutputs.for_csv(settings.output_dir, path), listed, remote))
        identities = identity_status(settings.output_dir, csvs)
    if as_json:
        print(json.dumps({"csvs": [{k: v for k, v in s.items() if k != "identities"} for s in csvs],
                          "identities": identities}, indent=2))
    else:
        for line in status_lines(csvs, identities):
            print(redact(line))
    return EXIT_OK


def report_all(settings: Settings) -> int:
    """--report: per CSV, the class-by-class account of what the manifests hold."""
    with on_copy(settings, whole=False, push=True) as (settings, listed):
        return _report_all(settings, listed)


def _report_all(settings: Settings, listed: dict[str, set[str]]) -> int:
    ontology = load_ontology(settings)
    for csv_path in settings.csv_file_names:
        outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
        outputs.root.mkdir(parents=True, exist_ok=True)
        with exclusive(outputs):  # not while a run is writing the manifests
            held = listed.get(outputs.name)
            ledger = Ledger(outputs, present=(lambda held=held: held) if held is not None else None)
            ledger.load()
            csv_report = report.count(csv_path, ledger, settings)
            files = report.write_report(csv_report, outputs, ontology)
        print(csv_report.headline())
        print("  wrote " + ", ".join(map(str, files)))
        if len(files) == 1:
            print('  the chart (X.report.png) needs matplotlib: pip install -e ".[report]"')
    return EXIT_OK


def merge_all(settings: Settings, given: list[str]) -> int:
    """--merge: other runs' outputs (folders, or OUTPUT_DIRs on object storage) into OUTPUT_DIR."""
    with contextlib.ExitStack() as copies:
        sources = [copies.enter_context(_merged_from(settings, source)) for source in given]
        names = sorted({name for source in sources for name in csv_names(source)})
        with on_copy(settings, whole=True, push=True, names=names) as (target, _):
            # On object storage no tar is rewritten in place: a merge adds new ones.
            return _merge_all(target, sources, reopen=settings.output_url is None)


@contextlib.contextmanager
def _merged_from(settings: Settings, source: str) -> Iterator[Path]:
    """A source of --merge as a local folder: itself, or a whole copy of an OUTPUT_DIR on object storage."""
    if "://" not in source:
        yield Path(source)
        return
    if source.rstrip("/") == settings.output_url:
        raise ConfigError(f"--merge {source}: that is OUTPUT_DIR itself; merge other runs' outputs into it")
    store = Store(source, settings.storage_options, "--merge")
    store.check(write=False)
    names = [name.removesuffix(".split-pos.csv") for name in store.names("") if name.endswith(".split-pos.csv")]
    with tempfile.TemporaryDirectory(prefix="audioset-merge-") as folder:
        StoreCopy(store, Path(folder)).pull(names, whole=True)
        yield Path(folder)


def _merge_all(settings: Settings, sources: list[Path], reopen: bool = True) -> int:
    for source in sources:
        if not source.is_dir():
            raise ConfigError(f"--merge {source}: not a folder; give the OUTPUT_DIR of each run to merge")
        if source.resolve() == settings.output_dir.resolve():
            raise ConfigError(f"--merge {source}: that is OUTPUT_DIR itself; merge other runs' folders into it")
    held = {source: csv_names(source) for source in sources}
    names = sorted({name for found in held.values() for name in found})
    if not names:
        raise ConfigError("--merge: no *.split-pos.csv in " + ", ".join(map(str, sources)))
    settings.output_dir.mkdir(parents=True, exist_ok=True)
    ontology = load_ontology(settings)
    lists = {path.stem: path for path in settings.csv_file_names}
    for name in names:
        target = CsvOutputs(settings.output_dir, name)
        notes = ListNotes()
        if name in lists:  # its annotations come from the list, as in a run
            notes = ListNotes(list_format(lists[name], settings).NOTE_COLUMNS, NotesOf(lists[name], settings))
        with exclusive(target):
            print(merge_csv(name, [s for s in sources if name in held[s]], target, ontology,
                            settings.tar_size, notes, reopen, settings.shard_suffix or "tar").line())
    return EXIT_OK


def verify_all(settings: Settings, repair: bool) -> int:
    with on_copy(settings, whole=True, push=repair) as (settings, _):
        return _verify_all(settings, repair)


def _verify_all(settings: Settings, repair: bool) -> int:
    found = 0
    for csv_path in settings.csv_file_names:
        outputs = CsvOutputs.for_csv(settings.output_dir, csv_path)
        with exclusive(outputs) if repair else contextlib.nullcontext():
            report = verify_csv(csv_path, settings, repair)
        for problem in report.problems:
            print(problem)
        found += len(report.problems)
        print(f"{csv_path}: {report.rows} rows checked, {len(report.problems)} problems"
              + (f"; repaired: {len(report.broken_rows)} rows and {report.removed} files removed, "
                 "a rerun fetches them again" if repair and report.problems else ""))
        if report.measured:
            print(f"{csv_path}: {len(report.measured)} clips recorded before clips were measured, measured now "
                  f"({report.silent} silent); "
                  + ("their measures are written into the manifests" if repair
                     else "--verify --repair writes their measures in"))
    return EXIT_FATAL if found else EXIT_OK
