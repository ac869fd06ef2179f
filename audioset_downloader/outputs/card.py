"""The dataset card: OUTPUT_DIR/X.README.md, rewritten at the end of every run.

What was downloaded (from the manifests, so it covers every run so far, not just the
last), when, with what, in which format, and how to load it, citing AudioSet: a page
ready to publish beside the data. It names no identity's proxy or cookie file.
"""

from __future__ import annotations

from dataclasses import dataclass
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
AUDIOSET_TERMS = ("AudioSet's labels and segment lists are by Google, released under CC BY 4.0 "
                  "(https://creativecommons.org/licenses/by/4.0/); the ontology under CC BY-SA 4.0.")


@dataclass(frozen=True)
class ListCard:
    """What a card says of the set a list belongs to: what it is, its terms, how to cite it."""

    about: str
    terms: str
    citation: str


# Keyed by the list format's NAME (inputs/lists).
SETS = {
    "AudioSet": ListCard("the ten-second YouTube windows that Google's AudioSet lists", AUDIOSET_TERMS, CITATION),
    "AudioCaps": ListCard(
        "the YouTube windows AudioCaps captions (every one an AudioSet window; captions and `audiocap_ids` "
        "travel with each clip)",
        "AudioCaps' captions are by its authors, whose README asks for academic use only; the windows come "
        "from AudioSet. " + AUDIOSET_TERMS,
        """@inproceedings{kim2019audiocaps,
  title     = {AudioCaps: Generating Captions for Audios in The Wild},
  author    = {Kim, Chris Dongjoo and Kim, Byeongchang and Lee, Hyunmin and Kim, Gunhee},
  booktitle = {Proc. NAACL-HLT},
  year      = {2019}
}"""),
    "MusicCaps": ListCard(
        "the YouTube windows MusicCaps describes (AudioSet windows; caption, aspect list and author travel "
        "with each clip)",
        "MusicCaps is released under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).",
        """@article{agostinelli2023musiclm,
  title   = {MusicLM: Generating Music From Text},
  author  = {Agostinelli, Andrea and Denk, Timo I. and Borsos, Zal{\'a}n and Engel, Jesse and Verzetti, Mauro
             and Caillon, Antoine and Huang, Qingqing and Jansen, Aren and Roberts, Adam and Tagliasacchi, Marco
             and Sharifi, Matt and Zeghidour, Neil and Frank, Christian},
  journal = {arXiv preprint arXiv:2301.11325},
  year    = {2023}
}"""),
    "VGGSound": ListCard(
        "the ten-second YouTube windows VGGSound lists (its class name and split travel with each clip)",
        "VGGSound is released under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).",
        """@inproceedings{chen2020vggsound,
  title     = {VGGSound: A Large-scale Audio-Visual Dataset},
  author    = {Chen, Honglie and Xie, Weidi and Vedaldi, Andrea and Zisserman, Andrew},
  booktitle = {Proc. IEEE ICASSP},
  year      = {2020}
}"""),
    "AudioSet strong": ListCard(
        "the ten-second AudioSet windows with temporally strong labels (each event's onset, offset and MID "
        "travel with its clip)",
        "The strong labels are by Google, released under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).",
        """@inproceedings{hershey2021strong,
  title     = {The Benefit of Temporally-Strong Labels in Audio Event Classification},
  author    = {Hershey, Shawn and Ellis, Daniel P. W. and Fonseca, Eduardo and Jansen, Aren and Liu, Caroline
               and Moore, R. Channing and Plakal, Manoj},
  booktitle = {Proc. IEEE ICASSP},
  year      = {2021}
}"""),
    "Kinetics": ListCard(
        "the YouTube windows Kinetics lists (its class name and split travel with each clip)",
        "DeepMind's Kinetics lists are released under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/).",
        """@article{kay2017kinetics,
  title   = {The Kinetics Human Action Video Dataset},
  author  = {Kay, Will and Carreira, Joao and Simonyan, Karen and Zhang, Brian and Hillier, Chloe and
             Vijayanarasimhan, Sudheendra and Viola, Fabio and Green, Tim and Back, Trevor and Natsev, Paul and
             Suleyman, Mustafa and Zisserman, Andrew},
  journal = {arXiv preprint arXiv:1705.06950},
  year    = {2017}
}"""),
    "COLUMNS": ListCard("the YouTube windows listed", "The list's terms are its publisher's.", ""),
}


def render(report: CsvReport, summary: CsvSummary, settings: Settings, outputs: CsvOutputs) -> str:
    total, reasons = report.total, report.reasons
    provenance = summary.provenance
    backends = ", ".join(f"{name} {version or '(version unknown)'}"
                         for name, version in (provenance.get("backends") or {}).items())
    runtime = provenance.get("js_runtime") or {}
    pace = settings.requests_per_minute
    dataset = summary.list_format if summary.list_format in SETS else "AudioSet"
    about = SETS[dataset]
    title = "Windows" if dataset == "COLUMNS" else dataset
    lines = [
        f"# {title} `{report.csv.name}`: audio clips",
        "",
        f"The audio of {about.about} in `{report.csv.name}`, "
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
        f"Of the clips written, {report.reused} were taken from clips already on disk (another list's "
        "download of the same windows: `backend` = `reused`), without a request to YouTube.",
        "",
        *_mirrored(report, summary),
        f"Silent clips: {report.total.silent} of those written hold nothing above -60 dBFS (YouTube mutes the "
        "audio of videos with a copyright claim; some are silent at the source). Every manifest flags them "
        "(`silent`, with `peak_dbfs`, `rms_dbfs`, `silent_share` and `duration_seconds`); to leave them out, "
        + ("`clips.filter(lambda clip: str(clip[\"silent\"]).lower() != \"true\")`."
           if settings.output_layout == "files" else
           "skip the rows whose `silent` is true." if settings.output_layout == "parquet" else
           "skip the samples whose json has `\"silent\": true`."),
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
        f"{about.terms} The audio belongs to the videos' uploaders on YouTube: share it only as their rights "
        "and YouTube's terms allow." + (f" Cite {dataset} as:" if about.citation else ""),
        "",
        *(["```bibtex", about.citation, "```", ""] if about.citation else []),
    ]
    return "\n".join(lines)


def _mirrored(report: CsvReport, summary: CsvSummary) -> list[str]:
    """Which public copies the clips came from, at which revision, and what the audit measured of each."""
    if not report.mirrored and not summary.mirrors_so_far:
        return []
    lines = [f"Of the clips written, {report.mirrored} were converted from public copies of the audio (mirrors: "
             "`backend` = `mirror`), checked (decoded whole, their length against the window's) like a download. "
             "Each copy is a third party's, under its own terms. Per copy, at the revision read (`URL@revision`):",
             "", "| mirror | clips | audit: copies measured against YouTube | median offset | agreement | level |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    audits = {entry["mirror"]: entry for entry in summary.mirror_audit}
    for label, count in sorted(summary.mirrors_so_far.items()):
        audit = audits.get(label, {})
        measured = audit.get("measured") or 0
        lines.append(f"| `{label}` | {count} | {measured or 'not audited this run'} | "
                     + (f"{audit['offset_ms']:+.1f} ms | {audit['agreement']:.3f} | {audit['level_db']:+.1f} dB |"
                        if measured else "| | |"))
    return [*lines, ""]


def _layout(settings: Settings, outputs: CsvOutputs) -> str:
    if settings.output_layout == "webdataset":
        return (f"WebDataset tar shards of {settings.clips_per_tar} clips (`{outputs.name}/{outputs.name}-000000.tar`, "
                f"...; the last may hold fewer), each sample a `.{settings.clip_format}` and its `.json`")
    if settings.output_layout == "parquet":
        return (f"parquet files of {settings.tar_size} clips (`{outputs.name}/{outputs.name}-000000.parquet`, ...; "
                "the last may hold fewer), a row per clip and a row group per row")
    return f"one file per segment (`{outputs.name}/`)"


# Decoding a clip's bytes to an array with nothing pip cannot bring: soundfile (libsndfile, in its wheels) reads
# WAV, FLAC and Ogg Opus; PyAV (FFmpeg, in its wheels) reads AAC in m4a or mp4.
_DECODERS = {"wav": "soundfile", "flac": "soundfile", "opus": "soundfile", "m4a": "av", "mp4": "av"}


def _decode(ext: str, data: str, indent: str = "") -> list[str]:
    """Lines that set ``audio`` (an array) and ``rate`` from the expression ``data`` (a clip's bytes)."""
    if _DECODERS[ext] == "soundfile":
        return [f"{indent}audio, rate = soundfile.read(io.BytesIO({data}))"]
    return [f"{indent}with av.open(io.BytesIO({data})) as media:  # AAC: FFmpeg, as PyAV's wheels bring it",
            f"{indent}    audio = numpy.concatenate([frame.to_ndarray() for frame in media.decode(audio=0)], axis=1)",
            f"{indent}    rate = media.streams.audio[0].rate"]


def loading_packages(settings: Settings) -> list[str]:
    """What the card's loading lines need, as its pip line names them: the newest releases do."""
    decoder = ["av", "numpy"] if _DECODERS[settings.clip_format] == "av" else ["soundfile"]
    reader = ["webdataset"] if settings.output_layout == "webdataset" else ["datasets"]
    return reader + decoder


def _loading(settings: Settings, outputs: CsvOutputs) -> list[str]:
    name, ext = outputs.name, settings.clip_format
    listed = (f"`{name}.split-pos.csv` lists every clip written: `file` (relative to this folder), `YTID`, "
              "`start_seconds`, `end_seconds`, `positive_labels` (MIDs), `label_names`, `backend`")
    imports = "import io" + (", numpy" if _DECODERS[ext] == "av" else "")
    decoder = "av" if _DECODERS[ext] == "av" else "soundfile"
    pip = f"pip install {' '.join(loading_packages(settings))}"
    lines = ["Run these in this folder, after installing what they use (the newest releases; datasets 3.x works "
             "the same):", "", "```bash", pip, "```", ""]
    torchcodec = ("With `torchcodec` and FFmpeg's shared libraries installed (pip brings torch and torchcodec, "
                  "not those libraries: they come from the system, e.g. `apt install ffmpeg`), datasets 4 and later "
                  "also decode the audio column on access, as an `AudioDecoder`; the lines above need neither.")
    if settings.output_layout == "files":
        return lines + [
            f"{listed}. The clip folder's `metadata.csv` has a row per clip (`file_name`, `YTID`, `start_seconds`, "
            "`end_seconds`, `labels`, `label_names` and the measures):", "",
            "```python", imports, f"import datasets, {decoder}", "",
            f'clips = datasets.load_dataset("csv", data_files="{name}/metadata.csv", split="train")',
            f'with open("{name}/" + clips[0]["file_name"], "rb") as clip:',
            *_decode(ext, "clip.read()", "    "),
            'print(audio.shape, rate, clips[0]["labels"], clips[0]["label_names"])', "```", "",
            f'The folder is also a Hugging Face `audiofolder`: `datasets.load_dataset("audiofolder", '
            f'data_dir="{name}")`. datasets 3.x decodes it with soundfile (WAV, FLAC, Ogg); from datasets 4 on, '
            "loading it needs torchcodec. " + torchcodec]
    if settings.output_layout == "parquet":
        return lines + [
            f"{listed}, with `file` the parquet file and `member` the clip's row in it (its `audio.path`). Each "
            "row holds the clip in `audio` (`{bytes, path}`, declared an Audio feature for the Hub's viewer), "
            "then `YTID`, `start_seconds`, `end_seconds`, `labels`, `label_names`, the measures and the list's "
            "annotations:", "",
            "```python", imports, f"import datasets, {decoder}", "",
            f'clips = datasets.load_dataset("parquet", data_files="{name}/{name}-*.parquet", split="train")',
            'clips = clips.cast_column("audio", datasets.Audio(decode=False))  # the bytes, decoded below',
            *_decode(ext, 'clips[0]["audio"]["bytes"]'),
            'print(audio.shape, rate, clips[0]["YTID"], clips[0]["labels"], clips[0]["label_names"])', "```", "",
            torchcodec]
    return lines + [
        f"{listed}, with `file` the shard and `member` the clip in it. Each sample's key is the clip's name "
        f"without its extension; its `.json` holds `YTID`, `start_seconds`, `end_seconds`, `labels` (MIDs) "
        "and `label_names`:", "",
        "```python", f"{imports}, glob, json", f"import webdataset, {decoder}", "",
        f'shards = sorted(glob.glob("{name}/{name}-*.tar"))',
        "for sample in webdataset.WebDataset(shards, shardshuffle=False):",
        *_decode(ext, f'sample["{ext}"]', "    "),
        '    print(audio.shape, rate, json.loads(sample["json"])["labels"])', "    break", "```", "",
        "datasets' own `webdataset` builder reads the shards too (`datasets.load_dataset(\"webdataset\", "
        f'data_files={{"train": "{name}/{name}-*.tar"}})`): datasets 3.x decodes WAV, FLAC and Ogg samples with '
        "soundfile; from datasets 4 on, loading them needs torchcodec. " + torchcodec]


def write_card(report: CsvReport, summary: CsvSummary, settings: Settings, outputs: CsvOutputs) -> Path:
    path = outputs.card
    write_atomically(path, render(report, summary, settings, outputs))
    return path

