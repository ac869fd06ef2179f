"""What a person watching the terminal sees: a progress bar per CSV, and the closing table."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from audioset_downloader.outputs.summary import CsvSummary


class ProgressBar:
    """One tqdm bar per CSV: clips finished, written and failed, rate and ETA."""

    def __init__(self, name: str, total: int, position: int) -> None:
        from tqdm import tqdm

        self._bar = tqdm(total=total, desc=name, unit="clip", position=position, leave=True, dynamic_ncols=True,
                         file=sys.stdout)

    def update(self, written: int, failed: int, per_minute: float | None = None) -> None:
        """One more clip finished; ``per_minute``: the paced rate, which says the time left better than
        the rate so far (that counts the unpaced start and any cooling)."""
        postfix = {"written": written, "failed": failed}
        if per_minute:
            postfix["left"] = duration(60 * (self._bar.total - self._bar.n - 1) / per_minute)
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        self._bar.close()


class BarFriendlyHandler(logging.StreamHandler):
    """Console log lines printed above the bars instead of through them."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:
            self.handleError(record)


def show_progress() -> bool:
    """Bars only for a person: not when stdout is a file, a pipe or a CI log."""
    return sys.stdout.isatty()


def summary_table(summaries: Sequence[CsvSummary]) -> str:
    """The closing table: one row per CSV, then the failures by reason."""
    header = ("CSV", "written", "silent", "skipped", "failed", "invalid", "left out", "MB", "time")
    rows = [header]
    for s in summaries:
        rows.append((s.csv, str(s.written), str(s.silent), str(s.already_done + s.skipped_failed), str(s.failed_total),
                     str(s.invalid_rows), str(s.filtered_out + s.other_shards + s.not_attempted),
                     f"{s.bytes_written / 1e6:.1f}",
                     duration(s.wall_seconds)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    for s in summaries:
        if s.failed:
            reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(s.failed.items()))
            lines.append(f"{s.csv}: failed by reason: {reasons} (details in failed.csv)")
        if s.interrupted:
            lines.append(f"{s.csv}: interrupted; run again to continue")
    return "\n".join(lines)


def duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
