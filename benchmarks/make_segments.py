"""Write a synthetic segments CSV in Google's exact format, and optionally a resume state.

AudioSet's unbalanced list (2,041,789 rows, ~101 MB) is not shipped; this makes a
file of the same shape for planning benchmarks: three comment lines, unique
11-character YTIDs (some starting with "-"), windows of 10 s (a few shorter),
1 to 4 real label MIDs quoted as one field.

    python benchmarks/make_segments.py out/unbalanced.csv --rows 2041789 \\
        --done 1000000 --output-dir out/downloads

``--done N`` also writes the state of a run that finished the first N clips:
their rows in ``OUTPUT_DIR/<name>.split-pos.csv`` and an empty file for each.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
from pathlib import Path

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
REPO = Path(__file__).resolve().parents[1]


def label_mids() -> list[str]:
    with open(REPO / "data" / "class_labels_indices.csv", newline="") as handle:
        return [row["mid"] for row in csv.DictReader(handle)]


def make_rows(count: int, seed: int = 2017) -> list[tuple[str, str, str, str]]:
    rng = random.Random(seed)
    mids = label_mids()
    seen: set[str] = set()
    rows = []
    while len(rows) < count:
        ytid = "".join(rng.choice(ALPHABET) for _ in range(11))
        if ytid in seen:
            continue
        seen.add(ytid)
        start = rng.randrange(0, 590) + (0.3 if rng.random() < 0.001 else 0.0)
        end = start + (10 if rng.random() > 0.02 else rng.randrange(1, 10))
        labels = ",".join(rng.sample(mids, rng.randrange(1, 5)))
        rows.append((ytid, f"{start:.3f}", f"{end:.3f}", labels))
    rows.sort()  # Google's files are sorted by YTID
    return rows


def write_csv(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write("# Segments csv created by benchmarks/make_segments.py\n")
        handle.write(f"# num_ytids={len(rows)}, num_segs={len(rows)}, num_unique_labels=527, "
                     f"num_positive_labels={sum(r[3].count(',') + 1 for r in rows)}\n")
        handle.write("# YTID, start_seconds, end_seconds, positive_labels\n")
        for ytid, start, end, labels in rows:
            handle.write(f'{ytid}, {start}, {end}, "{labels}"\n')


def write_done(output_dir: Path, name: str, rows: list[tuple[str, str, str, str]]) -> None:
    clip_dir = output_dir / name
    clip_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / f"{name}.split-pos.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "YTID", "start_seconds", "end_seconds", "positive_labels"])
        for ytid, start, end, labels in rows:
            writer.writerow([f"{name}/{ytid}.wav", ytid, start, end, labels])
            os.close(os.open(clip_dir / f"{ytid}.wav", os.O_CREAT | os.O_WRONLY, 0o644))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--rows", type=int, default=2_041_789)
    parser.add_argument("--done", type=int, default=0, help="clips recorded as finished")
    parser.add_argument("--output-dir", type=Path, help="where the resume state goes (with --done)")
    args = parser.parse_args()
    rows = make_rows(args.rows)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    write_csv(args.csv, rows)
    if args.done:
        if args.output_dir is None:
            parser.error("--done needs --output-dir")
        write_done(args.output_dir, args.csv.stem, rows[: args.done])


if __name__ == "__main__":
    main()
