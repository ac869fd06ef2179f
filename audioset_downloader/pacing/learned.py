"""What runs learn of each identity, kept in OUTPUT_DIR/identities.json, and the book a run builds from it.

Per identity: the pace "auto" ended at, how long its blocks last and how many it has met, so
the next run starts there instead of bouncing off the limit again, and --dry-run can say how
long. The book (book.py) is built here from the settings and that file: a policy per identity
(policy.py), started from what was learnt.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from audioset_downloader.atomic import write_atomically
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.pacing.book import IdentityStats, PacingBook, duration_words
from audioset_downloader.pacing.policy import (
    GUEST_MARGIN,
    GUEST_START_PER_MINUTE,
    MIN_PER_MINUTE,
    YOUTUBE_BLOCK_S,
    AutoPace,
    FixedPace,
    Pace,
)

log = logging.getLogger(__name__)

LEARNED_FILE = "identities.json"


def pace_for(settings: Settings, learned: Learned | None) -> Pace:
    """The identity's policy: "auto" from what an earlier run learnt, or from what its backend says of limits."""
    youtube = settings.youtube_limits
    if settings.requests_per_minute == "auto":
        if learned is None:
            return AutoPace.youtube_guest() if youtube else AutoPace()
        block_s = learned.block_s or (YOUTUBE_BLOCK_S if youtube else 0.0)
        # Still exploring: above a guest's start the pace has held, so the next step needs no first long hold.
        held = learned.per_minute if learned.exploring and learned.per_minute > GUEST_START_PER_MINUTE else None
        return AutoPace(learned.per_minute, learned.ceiling or learned.per_minute, learned.probe_after,
                        block_s=block_s, exploring=learned.exploring, low=held)
    assert not isinstance(settings.requests_per_minute, str)
    return FixedPace(settings.requests_per_minute)


def book_arguments(settings: Settings) -> tuple[list[str], list[Pace], float, float]:
    """PacingBook's arguments for the run's identities, "auto" starting from the paces earlier runs learnt."""
    learned = load_learned(settings.output_dir)
    identities = settings.shared_identities
    return ([identity.name for identity in identities],
            [pace_for(settings, learned.get(identity.name)) for identity in identities],
            settings.retry_backoff, settings.max_backoff_minutes * 60)


def new_book(settings: Settings) -> PacingBook:
    return PacingBook(*book_arguments(settings))


@dataclass(frozen=True)
class Learned:
    """What "auto" learnt of an identity, kept between runs."""

    per_minute: float
    ceiling: float | None
    probe_after: float | None
    block_s: float | None = None  # how long its blocks lasted, as last measured
    blocks: int = 0  # blocks met, all runs together
    bot_checks: int = 0
    exploring: bool = False  # never refused yet: the next run goes on climbing from here


def load_learned(output_dir: Path) -> dict[str, Learned]:
    """Identity name -> what earlier runs learnt of it ({} when none)."""
    try:
        data = json.loads((output_dir / LEARNED_FILE).read_text(encoding="utf-8"))
        learned = {str(name): Learned(float(entry["per_minute"]), _rate(entry.get("ceiling")),
                                      _rate(entry.get("probe_after")), _rate(entry.get("block_s")),
                                      _count(entry.get("blocks")), _count(entry.get("bot_checks")),
                                      entry.get("exploring") is True)
                   for name, entry in data["identities"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("%s: unreadable (%s); pacing starts afresh", output_dir / LEARNED_FILE, exc)
        return {}
    return {name: entry for name, entry in learned.items() if _rate(entry.per_minute) is not None}


def _rate(value: object) -> float | None:
    """A positive finite number from the file, else None (a hand-edited file may hold anything)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    return float(value) if math.isfinite(value) and value >= MIN_PER_MINUTE else None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 else 0


def save_learned(output_dir: Path, stats: Sequence[IdentityStats]) -> None:
    """Keep what this run learnt, beside what earlier runs learnt of other identities (once, as a run ends)."""
    previous = {}
    with contextlib.suppress(FileNotFoundError, ValueError, OSError, KeyError, TypeError):
        previous = json.loads((output_dir / LEARNED_FILE).read_text(encoding="utf-8"))["identities"]
    for entry in stats:
        if entry.per_minute is not None and entry.ceiling is not None:  # "auto"
            before = previous.get(entry.name) if isinstance(previous.get(entry.name), dict) else {}
            previous[entry.name] = {
                **asdict(entry), "block_s": entry.block_s or _rate(before.get("block_s")),
                "blocks": _count(before.get("blocks")) + entry.blocks,
                "bot_checks": _count(before.get("bot_checks")) + entry.bot_checks,
                "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if previous:
        write_atomically(output_dir / LEARNED_FILE, json.dumps({"identities": previous}, indent=2) + "\n")


def planned_per_minute(settings: Settings) -> tuple[float, str]:
    """The paced rate a run will go at (clip attempts per minute, all identities), and where it comes from.

    With PER_MACHINE_IDENTITY the machines are not known before the run: one is counted, and it says so."""
    rate, source = _planned(settings, settings.shared_identities, 1 if settings.machine_identities else 0)
    if settings.machine_identities:
        source += "; counting one worker machine (PER_MACHINE_IDENTITY): each more adds its own identity"
    return rate, source


def _planned(settings: Settings, identities: Sequence, machines: int) -> tuple[float, str]:
    count = len(identities) + machines
    if settings.requests_per_minute is None:
        return math.inf, "no cap (REQUESTS_PER_MINUTE = None)"
    if settings.requests_per_minute != "auto":
        assert not isinstance(settings.requests_per_minute, str)
        return settings.requests_per_minute * count, \
            f"REQUESTS_PER_MINUTE = {settings.requests_per_minute:g} x {count} identities"
    learned = load_learned(settings.output_dir)
    known = [learned[identity.name].per_minute for identity in identities if identity.name in learned]
    guessed = count - len(known)
    parts = []
    if known:
        parts.append(f"{len(known)} at the pace learnt by earlier runs ({settings.output_dir / LEARNED_FILE})")
    if guessed and not settings.youtube_limits:
        return math.inf, "; ".join([*parts, f"{guessed} unpaced until the server's first 429 (not YouTube; "
                                            "nothing learnt yet)"])
    if guessed:
        parts.append(f"{guessed} at {GUEST_START_PER_MINUTE * 60:g} clips an hour ({GUEST_MARGIN:.0%} of YouTube's "
                     "guest limit, about; nothing learnt yet)")
    return sum(known) + guessed * GUEST_START_PER_MINUTE, "; ".join(parts)


def learned_lines(settings: Settings) -> list[str]:
    """Per identity of the run, what earlier runs learnt of it: for --dry-run."""
    learned = load_learned(settings.output_dir)
    lines = []
    for identity in settings.shared_identities:
        entry = learned.get(identity.name)
        if entry is None:
            lines.append(f"identity {identity.name}: nothing learnt yet")
            continue
        block = f"blocks last {duration_words(entry.block_s)}" if entry.block_s else "no block measured"
        climbing = ", still climbing" if entry.exploring else ""
        lines.append(f"identity {identity.name}: pace {entry.per_minute * 60:.0f} clips/h{climbing}; {block}; "
                     f"{entry.blocks} blocks so far ({entry.bot_checks} bot checks)")
    return lines
