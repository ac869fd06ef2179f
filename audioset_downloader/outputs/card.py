"""The dataset card: OUTPUT_DIR/X.README.md, rewritten at the end of every run.

What was downloaded (from the manifests, so it covers every run so far, not just the
last), when, with what, in which format, and how to load it, citing AudioSet: a page
ready to publish beside the data. It names no identity's proxy or cookie file.
"""

from __future__ import annotations

from pathlib import Path

from audioset_downloader.atomic import write_atomically
from audioset_downloader.errors import FailureReason
from audioset_downloader.inputs.settings import Settings
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.report import CsvReport
from audioset_downloader.outputs.summary import CsvSummary

CITATION = """@inproceedings{gemmeke2017audioset,
  title     = {Audio Set: An ontology and human-labeled dataset for audio events},
  author    = {Gemmeke, Jort F. and Ellis, Daniel P. W. and Freedman, Dylan and Jansen, Aren and
               Lawrence, Wade and Moore, R. Channing and Plakal, Manoj and Ritter, Marvin},
  booktitle = {Proc. IEEE ICASSP},
  year      = {2017}
}"""


def render(report: CsvReport, summary: CsvSummary, settings: Settings, outputs: CsvOutputs) -> str:
    total, reasons = report.total, report.reasons
    provenance = summary.provenance
    backends = ", ".join(f"{name} {version or '(version unknown)'}"
                         for name, version in (provenance.get("backends") or {}).items())
    runtime = provenance.get("js_runtime") or {}
    pace = settings.requests_per_minute
    lines = [
        f"# AudioSet `{report.csv.name}`: audio clips",
        "",
        f"The audio of the ten-second YouTube windows that Google's AudioSet lists in `{report.csv.name}`, "
        f"as far as they could still be downloaded. Written by {provenance.get('package', 'audioset-downloader')}; "
        f"this card was last rewritten at the end of the run of {provenance.get('ended_utc') or 'unknown'} (UTC).",
        "",
        "## What is here",
        "",
        "| segments in the CSV | written | failed | not yet attempted | availability |",
        "| ---: | ---: | ---: | ---: | ---: |",
        f"| {total.segments} | {total.written} | {sum(total.failed.values())} | {total.not_attempted} "
        f"| {total.availability:.1f} % |",
        "",
        f"Rows in the CSV that are not valid segments: {report.invalid_rows}. Classes present: "
        f"{len(report.classes)}. `python AudioDownloader.py --report` writes the same counts class by class "
        f"(`{outputs.name}.report.csv`, `{outputs.name}.report.png`).",
        "",
    ]
    if reasons:
        lines += ["Failed segments by reason (`failed.csv` has one row each, with YouTube's words):", "",
                  "| reason | kind | segments |", "| --- | --- | ---: |"]
        for reason, count in reasons.most_common():
            known = FailureReason.from_label(reason)
            lines.append(f"| `{reason}` | {known.kind.value if known else 'unknown'} | {count} |")
        lines += ["", "Permanent: the video is gone or closed to guests. Transient: a later run may get it. "
                  "Local: this side (a bad row, a decoding failure).", ""]
    lines += [
        "## How it was made",
        "",
        f"- Backends (in the order tried): {backends or 'unknown'}; yt-dlp-ejs "
        f"{provenance.get('yt_dlp_ejs') or 'not used'}; JS runtime "
        f"{(runtime.get('name', '') + ' ' + runtime.get('version', '')).strip() or 'not used'}; "
        f"ffmpeg {provenance.get('ffmpeg') or 'unknown'}.",
        f"- Format: {settings.clip_format}; sample rate: "
        f"{f'{settings.sample_rate} Hz' if settings.sample_rate else 'as the source (44.1 or 48 kHz)'}; "
        f"channels: {settings.channels or 'as the source'}; layout: {_layout(settings, outputs)}.",
        "- Windows cut to the CSV's start and end times (within 20 ms; see the downloader's README).",
        f"- Pace: REQUESTS_PER_MINUTE = {pace!r} per identity, over {len(settings.identity_list)} "
        f"identit{'y' if len(settings.identity_list) == 1 else 'ies'}.",
        "",
        "## Loading it",
        "",
        *_loading(settings, outputs),
        "",
        "## Licence and citation",
        "",
        "AudioSet's labels and segment lists are by Google, released under CC BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/); the ontology under CC BY-SA 4.0. The audio belongs "
        "to the videos' uploaders on YouTube: share it only as their rights and YouTube's terms allow. "
        "Cite AudioSet as:",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(lines)


def _layout(settings: Settings, outputs: CsvOutputs) -> str:
    if settings.output_layout == "webdataset":
        return (f"WebDataset tar shards of {settings.clips_per_tar} clips (`{outputs.name}/{outputs.name}-000000.tar`, "
                f"...; the last may hold fewer), each sample a `.{settings.clip_format}` and its `.json`")
    return f"one file per segment (`{outputs.name}/`)"


def _loading(settings: Settings, outputs: CsvOutputs) -> list[str]:
    name, ext = outputs.name, settings.clip_format
    listed = (f"`{name}.split-pos.csv` lists every clip written: `file` (relative to this folder), `YTID`, "
              "`start_seconds`, `end_seconds`, `positive_labels` (MIDs), `label_names`, `backend`")
    if settings.output_layout == "files":
        return [f"{listed}. The clip folder is a Hugging Face `audiofolder`:", "",
                "```python", "import datasets",
                f'clips = datasets.load_dataset("audiofolder", data_dir="{name}", split="train")',
                'clips[0]["audio"]["array"], clips[0]["labels"], clips[0]["label_names"]', "```"]
    decodes = ext in ("wav", "flac", "opus")  # datasets 3's Audio extensions among ours
    array = '["array"]' if decodes else ""
    decoded = "" if decodes else f" (it does not decode `.{ext}`: it gives the bytes, for ffmpeg or torchaudio)"
    return [
        f"{listed}, with `file` the shard and `member` the clip in it. Each sample's key is the clip's name "
        f"without its extension; its `.json` holds `YTID`, `start_seconds`, `end_seconds`, `labels` (MIDs) "
        "and `label_names`. With the `webdataset` package:", "",
        "```python", "import glob, io, json", "import soundfile, webdataset",
        f'for sample in webdataset.WebDataset(sorted(glob.glob("{name}/{name}-*.tar")), shardshuffle=False):',
        f'    audio, rate = soundfile.read(io.BytesIO(sample["{ext}"]))  # wav or flac; else decode with ffmpeg',
        '    labels = json.loads(sample["json"])["labels"]', "```", "",
        f"With Hugging Face `datasets`{decoded}:", "",
        "```python", "import datasets",
        f'clips = datasets.load_dataset("webdataset", data_files={{"train": "{name}/{name}-*.tar"}}, split="train")',
        f'clips[0]["{ext}"]{array}, clips[0]["json"]["labels"], clips[0]["json"]["label_names"]', "```"]


def write_card(report: CsvReport, summary: CsvSummary, settings: Settings, outputs: CsvOutputs) -> Path:
    path = outputs.root / f"{outputs.name}.README.md"
    write_atomically(path, render(report, summary, settings, outputs))
    return path

