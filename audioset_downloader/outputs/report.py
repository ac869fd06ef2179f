"""--report: how much of each CSV you have, class by class, counted from the manifests.

Every paper that trains on AudioSet has to say how much of it it obtained, and
availability differs by class. For each CSV this writes ``X.report.csv`` (a row per
class that occurs in the CSV: segments, written, failed by kind, not yet attempted,
availability) and ``X.report.png`` (the least available classes, and the whole). A
segment with several labels counts for each of its classes. Availability is written
over segments: the share of the CSV's segments you have.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from audioset_downloader.atomic import write_atomically
from audioset_downloader.errors import Kind
from audioset_downloader.fetch.mirrors.source import BACKEND as MIRRORED
from audioset_downloader.inputs.labels import Ontology
from audioset_downloader.inputs.lists import classes_of, read_list
from audioset_downloader.inputs.segments import InvalidRow, parse_ms
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import BACKEND, SILENT, Ledger
from audioset_downloader.outputs.reuse import BACKEND as REUSED

KINDS = (Kind.PERMANENT.value, Kind.TRANSIENT.value, Kind.LOCAL.value)
HEADER = ("mid", "name", "segments", "written", "silent", *(f"failed_{kind}" for kind in KINDS), "not_attempted",
          "availability_percent")
PLOTTED = 25  # the least available classes the picture shows


@dataclass
class Counts:
    segments: int = 0
    written: int = 0
    silent: int = 0  # of those written: nothing above -60 dBFS (fetch/measure.py)
    failed: Counter[str] = field(default_factory=Counter)  # kind -> segments

    @property
    def not_attempted(self) -> int:
        return self.segments - self.written - sum(self.failed.values())

    @property
    def availability(self) -> float:
        return 100.0 * self.written / self.segments if self.segments else 0.0


@dataclass
class CsvReport:
    csv: Path
    total: Counts
    classes: dict[str, Counts]  # MID -> counts
    invalid_rows: int
    reasons: Counter[str]  # failure reason -> segments that failed for it
    reused: int = 0  # clips written by taking a clip already on disk (backend "reused")
    mirrored: int = 0  # clips written from a mirror's copy (backend "mirror")

    def headline(self) -> str:
        t = self.total
        failed = ", ".join(f"{kind} {t.failed[kind]}" for kind in KINDS if t.failed[kind])
        return (f"{self.csv}: {t.written} of {t.segments} segments written ({t.availability:.1f} %); "
                f"{sum(t.failed.values())} failed" + (f" ({failed})" if failed else "")
                + f"; {t.not_attempted} not yet attempted; {self.invalid_rows} invalid rows; "
                f"{len(self.classes)} classes")


def count(csv_path: Path, ledger: Ledger, settings: Settings) -> CsvReport:
    """Per class and in all, from the CSV and what its ledger holds (loaded, or just run)."""
    total, classes, invalid, reasons = Counts(), {}, 0, Counter[str]()
    # One pass over split-pos.csv for what the keys alone do not say: which clips are silent, which reused.
    silent_keys: set[tuple] = set()
    reused = mirrored = 0
    for written in ledger.written_rows():
        reused += len(written) > BACKEND and written[BACKEND] == REUSED
        mirrored += len(written) > BACKEND and written[BACKEND] == MIRRORED
        if len(written) > SILENT and written[SILENT] == "true":
            silent_keys.add((written[1], parse_ms(written[2])))
    for row in read_list(csv_path, settings):
        if type(row) is InvalidRow:
            invalid += 1
            continue
        if ledger.is_done(row):
            outcome = "silent" if (row.ytid, row.start_ms) in silent_keys else "written"
        elif (failed := ledger.failed.get(row.key)) is not None:
            reasons[failed.reason] += 1
            reason = failed.failure_reason
            outcome = reason.kind.value if reason is not None else Kind.TRANSIENT.value  # a reason of another version
        else:
            outcome = ""
        for counts in (total, *(classes.setdefault(key, Counts()) for key in dict.fromkeys(classes_of(row)))):
            counts.segments += 1
            if outcome in ("written", "silent"):
                counts.written += 1
                counts.silent += outcome == "silent"
            elif outcome:
                counts.failed[outcome] += 1
    return CsvReport(csv_path, total, classes, invalid, reasons, reused, mirrored)


def write_report(report: CsvReport, outputs: CsvOutputs, ontology: Ontology | None) -> list[Path]:
    """X.report.csv, and X.report.png where matplotlib is installed (the report extra); the files written."""
    names = {mid: c.name for mid, c in ontology.by_mid.items()} if ontology else {}
    rows = sorted(report.classes.items(), key=lambda item: (item[1].availability, item[0]))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADER)
    for key, counts in rows:  # a MID, or a class name where the set has no MIDs (VGGSound)
        mid, name = (key, names.get(key, "")) if key.startswith("/") else ("", key)
        writer.writerow([mid, name, counts.segments, counts.written, counts.silent,
                         *(counts.failed[kind] for kind in KINDS), counts.not_attempted,
                         f"{counts.availability:.2f}"])
    csv_out = outputs.root / f"{outputs.name}.report.csv"
    write_atomically(csv_out, text.getvalue())
    written = [csv_out]
    try:
        import matplotlib
    except ImportError:
        return written
    matplotlib.use("Agg")
    written.append(_plot(report, rows, names, outputs.root / f"{outputs.name}.report.png"))
    return written


def _plot(report: CsvReport, rows: list[tuple[str, Counts]], names: dict[str, str], path: Path) -> Path:
    import matplotlib.pyplot as plt

    shown = rows[:PLOTTED]
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(shown) + 1.6))
    labels = [f"{names.get(mid, mid)} ({counts.written}/{counts.segments})" for mid, counts in shown]
    ax.barh(range(len(shown)), [counts.availability for _, counts in shown], color="tab:blue")
    # The silent part of each bar, marked: written, but nothing above -60 dBFS (muted by YouTube, mostly).
    ax.barh(range(len(shown)), [100.0 * counts.silent / counts.segments if counts.segments else 0.0
                                for _, counts in shown], color="tab:gray", hatch="//",
            label=f"silent: {report.total.silent} clips in all")
    ax.axvline(report.total.availability, color="tab:red", linestyle="--", linewidth=1,
               label=f"all segments: {report.total.availability:.1f} %")
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("segments written, % of the class's segments in the CSV")
    ax.set_title(f"{report.csv.name}: the {len(shown)} least available of {len(rows)} classes", fontsize=10)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    temp = path.with_name(path.name + ".part")
    fig.savefig(temp, format="png", dpi=100)
    plt.close(fig)
    temp.replace(path)
    return path

