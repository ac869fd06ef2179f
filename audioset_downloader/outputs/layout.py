"""Where one CSV's outputs live under OUTPUT_DIR.

For ``X.csv``: clips in ``X/`` (or, in the webdataset layout, tar shards
``X/X-000000.tar``, ...), manifests ``X.split-pos.csv`` and ``X.failed.csv``, the log
``X_dl.log``, the summary ``X.summary.json``. Each is written through ``atomic``.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from audioset_downloader.atomic import PARTIAL_SUFFIX
from audioset_downloader.inputs.settings import CLIP_EXTENSIONS

ATTEMPT = "[0-9a-f]{8}"  # an attempt's token (outputs/work.py): eight hex digits
# {stem}.{ext}: stems come from YTIDs. Not a shard's name, so a row cannot make a shard a clip.
CLIP_NAME = re.compile(r"[A-Za-z0-9_-]+\.(?:" + "|".join(CLIP_EXTENSIONS) + ")")


@dataclass(frozen=True)
class CsvOutputs:
    root: Path
    name: str

    @classmethod
    def for_csv(cls, output_dir: Path, csv_path: Path) -> CsvOutputs:
        return cls(output_dir, csv_path.stem)

    @property
    def clip_dir(self) -> Path:
        return self.root / self.name

    @property
    def split_pos(self) -> Path:
        return self.root / f"{self.name}.split-pos.csv"

    @property
    def failed(self) -> Path:
        return self.root / f"{self.name}.failed.csv"

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}_dl.log"

    @property
    def summary(self) -> Path:
        return self.root / f"{self.name}.summary.json"

    @property
    def metadata(self) -> Path:
        """Hugging Face's audiofolder metadata, beside the clips it describes."""
        return self.clip_dir / "metadata.csv"

    @property
    def status(self) -> Path:
        """The running process's heartbeat, for --status (outputs/status.py)."""
        return self.root / f"{self.name}.status.json"

    @property
    def card(self) -> Path:
        """The dataset card (outputs/card.py)."""
        return self.root / f"{self.name}.README.md"

    @property
    def lock(self) -> Path:
        return self.root / f".{self.name}.lock"

    def relative_clip(self, stem: str, extension: str) -> str:
        """The clip's path relative to OUTPUT_DIR, as split-pos.csv records it."""
        return f"{self.name}/{stem}.{extension}"

    def shard_name(self, index: int, attempt: str = "", suffix: str = "tar") -> str:
        """``X-000012.tar`` (or ``.parquet``); on object storage ``X-000012-<attempt>.tar``, a name no other
        attempt can take."""
        return f"{self.name}-{index:06d}{'-' + attempt if attempt else ''}.{suffix}"

    def relative_shard(self, index: int, attempt: str = "", suffix: str = "tar") -> str:
        """A shard's path relative to OUTPUT_DIR, as split-pos.csv records it."""
        return f"{self.name}/{self.shard_name(index, attempt, suffix)}"

    def shard_index(self, file_name: str) -> int | None:
        """The index of a shard file named ``X-000012.tar`` or ``.parquet`` (or ``X-000012-<attempt>.tar``); None
        for any other."""
        match = self._shard_name.fullmatch(file_name)
        return int(match.group(1)) if match else None

    def shard_attempt(self, file_name: str) -> str:
        """The attempt that put a shard up (object storage), "" for a shard named by its index alone."""
        match = self._shard_name.fullmatch(file_name)
        return (match.group(2) or "") if match else ""

    @functools.cached_property
    def _shard_name(self) -> re.Pattern[str]:  # asked once per row of a 2 M-row manifest: compiled once
        return re.compile(rf"{re.escape(self.name)}-(\d{{6,}})(?:-({ATTEMPT}))?\.(?:tar|parquet)")

    def clip_path(self, stem: str, extension: str) -> Path:
        # Stems come from validated YTIDs; this guards the invariant all the same.
        path = self.listed_clip(self.relative_clip(stem, extension))
        if path is None:
            raise ValueError(f"refusing a clip path outside {self.clip_dir}: {stem}.{extension}")
        return path

    def listed_clip(self, relative: str) -> Path | None:
        """The clip a manifest row names (relative to OUTPUT_DIR); None if that lies outside the clip folder."""
        path = self.root / relative
        return path if path.parent == self.clip_dir and not path.name.startswith(".") else None

    def prepare(self) -> None:
        self.clip_dir.mkdir(parents=True, exist_ok=True)

    def remove_outputs(self) -> None:
        """REMOVE_EXIST_DOWNLOADS: forget everything this CSV produced before."""
        if self.clip_dir.is_dir():
            shutil.rmtree(self.clip_dir)
        for path in (self.split_pos, self.failed, self.log, self.summary, self.status):
            path.unlink(missing_ok=True)

    def remove_partials(self) -> int:
        """Delete temporary files a killed run left behind; returns how many."""
        removed = 0
        manifests = tuple(f"{path.name}." for path in (self.split_pos, self.failed, self.summary, self.status))
        # Clips' temporaries sit in the clip folder, manifests' beside the manifests.
        for folder, prefixes in ((self.clip_dir, ("",)), (self.root, manifests)):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if entry.name.endswith(PARTIAL_SUFFIX) and entry.name.startswith(prefixes):
                    os.unlink(entry.path)
                    removed += 1
        return removed

    def existing_clips(self) -> set[str]:
        """File names in the clip folder (clips and shards): one directory scan instead of a stat per row."""
        if not self.clip_dir.is_dir():
            return set()
        return {entry.name for entry in os.scandir(self.clip_dir)}
