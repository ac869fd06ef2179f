"""AudioSet's classes: names for MIDs, and the LABELS / EXCLUDE_LABELS filters.

The ontology (data/ontology.json, 632 classes with their children) turns names
into MIDs and back; with INCLUDE_CHILD_LABELS a class stands for all its
descendants, so "Animal" also keeps "Dog" and "Bark".
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.segments import Segment
from audioset_downloader.inputs.settings import Settings

NAME_SEPARATOR = ";"  # between names in label_names: 83 AudioSet names contain commas, none a ";"
_PACKAGE_DATA = Path(__file__).resolve().parents[2] / "data" / "ontology.json"  # the checkout's data/


@dataclass(frozen=True)
class AudioClass:
    mid: str
    name: str
    children: tuple[str, ...]


class Ontology:
    def __init__(self, classes: Iterable[AudioClass]) -> None:
        self.by_mid = {c.mid: c for c in classes}
        self._by_name = {c.name.lower(): c for c in self.by_mid.values()}

    @classmethod
    def load(cls, path: Path) -> Ontology:
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))
            return cls(AudioClass(e["id"], e["name"], tuple(e.get("child_ids", ()))) for e in entries)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"ONTOLOGY_FILE {path}: cannot read AudioSet's ontology.json ({exc}); "
                              "point ONTOLOGY_FILE at data/ontology.json") from exc

    def find(self, wanted: str, setting: str) -> AudioClass:
        """A class by MID or by name (any case), or a ConfigError suggesting the closest names."""
        found = self.by_mid.get(wanted) or self._by_name.get(wanted.lower())
        if found is not None:
            return found
        hint = ", ".join(repr(self._by_name[name].name) for name in self._closest(wanted.lower())) or "none close"
        raise ConfigError(f"{setting}: no AudioSet class is called {wanted!r}; closest: {hint} "
                          "(python AudioDownloader.py --list-labels TEXT lists classes)")

    def _closest(self, wanted: str, count: int = 3) -> list[str]:
        """Names like ``wanted`` as a whole, or sharing a word with it (typos allowed): best first."""
        words = {word for name in self._by_name for word in re.findall(r"[a-z]+", name)}
        near = {close for word in re.findall(r"[a-z]+", wanted)
                for close in difflib.get_close_matches(word, words, n=2, cutoff=0.7)}
        candidates = set(difflib.get_close_matches(wanted, self._by_name, n=count, cutoff=0.6))
        candidates |= {name for name in self._by_name if near & set(re.findall(r"[a-z]+", name))}
        return sorted(candidates, key=lambda name: (-difflib.SequenceMatcher(None, wanted, name).ratio(), name))[:count]

    def descendants(self, mid: str) -> set[str]:
        found: set[str] = set()
        stack = [mid]
        while stack:
            current = stack.pop()
            if current not in found:
                found.add(current)
                stack.extend(self.by_mid[current].children if current in self.by_mid else ())
        return found

    def mids(self, wanted: Iterable[str], with_children: bool, setting: str) -> frozenset[str]:
        result: set[str] = set()
        for item in wanted:
            mid = self.find(item, setting).mid
            result |= self.descendants(mid) if with_children else {mid}
        return frozenset(result)

    def names(self, labels_text: str) -> str:
        """``"/m/0bt9lr,/m/05tny_"`` -> ``"Dog;Bark"`` (an unknown MID stays as it is)."""
        return NAME_SEPARATOR.join(
            self.by_mid[mid].name if mid in self.by_mid else mid
            for mid in (part.strip() for part in labels_text.split(",")) if mid
        )

    def search(self, text: str) -> list[AudioClass]:
        needle = text.lower()
        return sorted((c for c in self.by_mid.values() if needle in c.name.lower() or needle == c.mid.lower()),
                      key=lambda c: c.name.lower())


def ontology_path(settings: Settings) -> Path:
    """ONTOLOGY_FILE, else data/ontology.json here, else the one beside the package."""
    if settings.ontology_file is not None:
        return settings.ontology_file
    local = Path("data") / "ontology.json"
    return local if local.is_file() else _PACKAGE_DATA


@dataclass(frozen=True)
class LabelFilter:
    """Keep a segment carrying one of ``include`` (when given) and none of ``exclude``."""

    include: frozenset[str] | None
    exclude: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings, ontology: Ontology) -> LabelFilter | None:
        if not settings.labels and not settings.exclude_labels:
            return None
        include = ontology.mids(settings.labels, settings.include_child_labels, "LABELS") if settings.labels else None
        exclude = ontology.mids(settings.exclude_labels, settings.include_child_labels, "EXCLUDE_LABELS")
        return cls(include, exclude)

    def keeps(self, labels_text: str) -> bool:
        labels = {label.strip() for label in labels_text.split(",")}
        if self.include is not None and self.include.isdisjoint(labels):
            return False
        return self.exclude.isdisjoint(labels)

    def keeps_row(self, row: Segment) -> bool:
        return self.keeps(row.labels_text)


def class_names_of(row: Segment) -> list[str]:
    """A window's class names, for sets whose classes are names (VGGSound, Kinetics: the notes' ``label``)."""
    label = json.loads(row.notes).get("label", "") if row.notes else ""
    return [name for name in str(label).split(NAME_SEPARATOR) if name]


@dataclass(frozen=True)
class ClassNameFilter:
    """LABELS and EXCLUDE_LABELS for a set whose classes are names, not MIDs (VGGSound, Kinetics): any case."""

    include: frozenset[str] | None
    exclude: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings, known: Iterable[str], dataset: str) -> ClassNameFilter:
        """``known``: the class names the list holds; a name it does not hold is an error with the nearest."""
        by_lower = {name.lower(): name for name in known}

        def resolve(names: tuple[str, ...], setting: str) -> frozenset[str]:
            for name in names:
                if name.lower() not in by_lower:
                    hint = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=0.5)
                    raise ConfigError(f"{setting}: no {dataset} class in this list is called {name!r}; "
                                      + (f"did you mean {by_lower[hint[0]]!r}?" if hint else "none is close"))
            return frozenset(name.lower() for name in names)

        include = resolve(settings.labels, "LABELS") if settings.labels else None
        return cls(include, resolve(settings.exclude_labels, "EXCLUDE_LABELS"))

    def keeps_row(self, row: Segment) -> bool:
        names = {name.lower() for name in class_names_of(row)}
        if self.include is not None and self.include.isdisjoint(names):
            return False
        return self.exclude.isdisjoint(names)
