"""What happened to one CSV: the record saved as X.summary.json and shown at the end.

It lives below both the runner, which fills it, and the progress module, which
prints it, so that neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass
class CsvSummary:
    """What happened to one CSV; saved as X.summary.json and printed at the end."""

    csv: str
    list_format: str = ""  # AudioSet, AudioCaps, MusicCaps, ... (inputs/lists)
    rows: int = 0
    invalid_rows: int = 0
    filtered_out: int = 0  # not carrying LABELS, or carrying EXCLUDE_LABELS
    other_shards: int = 0  # --shard K/N: rows of the other shards
    already_done: int = 0
    skipped_failed: int = 0  # failed before for good (private, removed...): not tried again
    not_attempted: int = 0  # beyond TIMER's limit
    attempted: int = 0
    written: int = 0
    reused: int = 0  # of those written (or, in a dry run, to attempt): clips on disk already, taken without a request
    mirrored: int = 0  # of those written (or, in a dry run, to attempt): from a mirror's copy (fetch/mirrors/)
    by_mirror: dict[str, int] = field(default_factory=dict)  # those, per mirror (URL@revision)
    mirrors_so_far: dict[str, int] = field(default_factory=dict)  # the same over every run of these outputs
    mirror_bytes: int = 0  # read from the mirrors for them
    mirror_seconds: float = 0.0  # from the first mirror clip begun to the last done: bytes / this is the bandwidth
    # Per mirror: its copies measured against YouTube (MIRROR_AUDIT): median offset, agreement, level, kept.
    mirror_audit: list[dict[str, Any]] = field(default_factory=list)
    silent: int = 0  # of those written: nothing above -60 dBFS, kept and flagged (SILENT_CLIPS = "keep")
    failed: dict[str, int] = field(default_factory=dict)
    by_backend: dict[str, int] = field(default_factory=dict)  # clips written, per backend that resolved them
    by_identity: dict[str, int] = field(default_factory=dict)  # clips written, per identity they went through
    # Per identity, over the whole run so far (all CSVs): clips, blocks, bot_checks, rate_limited (requests
    # refused), cooling_s, per_minute, block_s (its blocks' length, as measured).
    identities: list[dict[str, Any]] = field(default_factory=list)
    bytes_written: int = 0
    wall_seconds: float = 0.0
    interrupted: bool = False
    # What produced the clips: package, backends and their versions, JS runtime, ffmpeg, UTC start and end.
    provenance: dict[str, Any] = field(default_factory=dict)
    # AUDIO_FORMAT, SAMPLE_RATE, CHANNELS, VIDEO: another list's run reuses these clips only if its own match.
    clip_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    def line(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.failed.items()))
        backends = ", ".join(f"{name} {count}" for name, count in sorted(self.by_backend.items()))
        text = (
            f"{self.csv}: {self.written} written{f' ({backends})' if backends else ''}, "
            f"{self.already_done} skipped (already done), "
            f"{self.failed_total} failed{f' ({reasons})' if reasons else ''}, "
            f"{self.invalid_rows} invalid rows"
        )
        if self.mirrored:
            rate = f", {size_words(self.mirror_bytes / self.mirror_seconds)}/s" if self.mirror_seconds else ""
            text += f", {self.mirrored} of the written from mirrors ({size_words(self.mirror_bytes)} read{rate})"
        if self.silent:
            text += f", {self.silent} of the written silent (flagged in the manifests)"
        if self.filtered_out:
            text += f", {self.filtered_out} left out by the label filters"
        if self.other_shards:
            text += f", {self.other_shards} in other shards"
        if self.skipped_failed:
            text += f", {self.skipped_failed} skipped (failed for good before; RETRY_FAILED = True retries them)"
        if self.not_attempted:
            text += f", {self.not_attempted} left for later (TIMER)"
        if self.interrupted:
            text += " - interrupted"
        return text

    def plan_line(self) -> str:
        """What --dry-run prints: what a run would do now."""
        return (
            f"{self.csv} ({self.list_format}): {self.rows} rows ({self.rows - self.invalid_rows} valid, "
            f"{self.invalid_rows} invalid); "
            f"{self.filtered_out} left out by the label filters, "
            + (f"{self.other_shards} in other shards, " if self.other_shards else "")
            + f"{self.already_done} already done, {self.skipped_failed} failed for good (skipped), "
            f"{self.attempted} to attempt"
            + (f" ({self.reused} on disk already, reused without a request)" if self.reused else "")
            + (f" ({self.mirrored} held by mirrors: "
               + ", ".join(f"{count} by {label}" for label, count in sorted(self.by_mirror.items())) + ")"
               if self.mirrored else "")
            + f", {self.not_attempted} left for later (TIMER)"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> CsvSummary:
        """Read a saved summary; keys of other versions (older or newer) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in json.loads(text).items() if key in known})


def size_words(size: float) -> str:
    """A byte count as people read it: 345 B, 12.3 MB, 2.4 TB."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
