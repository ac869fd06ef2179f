"""AudioCaps v1 and v2 (Kim et al., NAACL-HLT 2019): ``audiocap_id,youtube_id,start_time,caption``.

No end: the window is CLIP_SECONDS (10) from the start. Val and test hold five captions of each
window, five rows: one clip carries all five, with their ids.
"""

from __future__ import annotations

from audioset_downloader.inputs.lists.table import Window, header_of
from audioset_downloader.inputs.lists.table import window as checked
from audioset_downloader.inputs.segments import InvalidRow
from audioset_downloader.inputs.settings import Settings

NAME = "AudioCaps"
NOTE_COLUMNS = ("captions", "audiocap_ids")  # metadata.csv columns (and json keys) beside "dataset"
HEADER = ["audiocap_id", "youtube_id", "start_time", "caption"]
FIELDS = (4,)
DELIMITER = ","


def recognise(lines: list[str], settings: Settings) -> bool:
    return header_of(lines) == HEADER


def window(line: int, fields: list[str], header: list[str], settings: Settings) -> tuple[int, Window] | InvalidRow:
    audiocap_id, ytid, start, caption = fields
    return checked(line, ytid, start, None, "", {"dataset": NAME, "captions": [caption],
                                                 "audiocap_ids": [audiocap_id]})


def merge(notes: dict, more: dict) -> dict:
    return {**notes, "captions": notes["captions"] + more["captions"],
            "audiocap_ids": notes["audiocap_ids"] + more["audiocap_ids"]}
