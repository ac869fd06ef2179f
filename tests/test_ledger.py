"""The manifests survive kills, never duplicate a row, and keep failed.csv one row per segment."""

from __future__ import annotations

import csv
from pathlib import Path

from audioset_downloader.inputs.segments import Segment
from audioset_downloader.outputs.layout import CsvOutputs
from audioset_downloader.outputs.ledger import FAILED_HEADER, SPLIT_POS_HEADER, FailedRow, Ledger


def seg(ytid: str, start: int = 0) -> Segment:
    return Segment(ytid, start * 1000, start * 1000 + 10000, "/m/a,/m/b", 4, ytid)


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def make(tmp_path: Path) -> tuple[CsvOutputs, Ledger]:
    outputs = CsvOutputs(tmp_path, "eval_segments")
    outputs.prepare()
    return outputs, Ledger(outputs)


def write_clip(outputs: CsvOutputs, ytid: str) -> str:
    outputs.clip_path(ytid, "wav").write_bytes(b"RIFF")
    return outputs.relative_clip(ytid, "wav")


def test_rows_are_on_disk_as_soon_as_recorded(tmp_path: Path) -> None:
    outputs, ledger = make(tmp_path)
    ledger.open()
    ledger.record_written(seg("aaaaaaaaaaa"), write_clip(outputs, "aaaaaaaaaaa"), "pytube")
    # Not closed: a kill now must not lose the row.
    assert rows(outputs.split_pos) == [list(SPLIT_POS_HEADER),
                                       ["eval_segments/aaaaaaaaaaa.wav", "aaaaaaaaaaa", "0.000", "10.000", "/m/a,/m/b",
                                        "", "pytube", "", "", "", "", "", ""]]  # measures: none given
    ledger.close()


def test_a_row_torn_by_a_kill_is_cut_off_and_appending_resumes(tmp_path: Path) -> None:
    outputs, ledger = make(tmp_path)
    write_clip(outputs, "aaaaaaaaaaa")
    outputs.split_pos.write_text("file,YTID,start_seconds,end_seconds,positive_labels\n"
                                 "eval_segments/aaaaaaaaaaa.wav,aaaaaaaaaaa,0.000,10.000,/m/a\n"
                                 'eval_segments/bbbbbbbbbbb.wav,bbbbbbbbbbb,0.000,10.000,"/m/a')
    ledger.open()
    assert ledger.is_done(seg("aaaaaaaaaaa")) and not ledger.is_done(seg("bbbbbbbbbbb"))
    ledger.record_written(seg("bbbbbbbbbbb"), write_clip(outputs, "bbbbbbbbbbb"), "pytube")
    ledger.close()
    assert [row[1] for row in rows(outputs.split_pos)[1:]] == ["aaaaaaaaaaa", "bbbbbbbbbbb"]
    # The old row gains the columns it lacked (label_names, and backend, unknown: ""); the new one has them.
    assert [row[5:8] for row in rows(outputs.split_pos)] == [["label_names", "backend", "member"], ["", "", ""],
                                                             ["", "pytube", ""]]


def test_a_row_whose_clip_is_missing_is_dropped_so_the_clip_is_fetched_again(tmp_path: Path) -> None:
    outputs, ledger = make(tmp_path)
    write_clip(outputs, "aaaaaaaaaaa")
    outputs.split_pos.write_text("file,YTID,start_seconds,end_seconds,positive_labels\n"
                                 "eval_segments/aaaaaaaaaaa.wav,aaaaaaaaaaa,0.000,10.000,/m/a\n"
                                 "eval_segments/ccccccccccc.wav,ccccccccccc,0.000,10.000,/m/a\n")
    ledger.open()
    assert not ledger.is_done(seg("ccccccccccc"))
    ledger.close()
    assert [row[1] for row in rows(outputs.split_pos)[1:]] == ["aaaaaaaaaaa"]


def test_failed_csv_keeps_one_row_per_segment_with_the_latest_reason(tmp_path: Path) -> None:
    outputs, ledger = make(tmp_path)
    ledger.open()
    a, b = seg("aaaaaaaaaaa"), seg("bbbbbbbbbbb")
    ledger.record_failed(a.key, FailedRow(a.ytid, a.start_text, a.end_text, "network", "reset"))
    ledger.record_failed(b.key, FailedRow(b.ytid, b.start_text, b.end_text, "timeout", "slow"))
    ledger.record_failed(a.key, FailedRow(a.ytid, a.start_text, a.end_text, "unavailable", "HTTP error 404"))
    ledger.record_written(b, write_clip(outputs, "bbbbbbbbbbb"), "pytube")  # b succeeded on a retry
    ledger.close()
    assert rows(outputs.failed) == [list(FAILED_HEADER),
                                    ["aaaaaaaaaaa", "0.000", "10.000", "unavailable", "HTTP error 404"]]

    # After a kill the file may hold an old row and a newer one: the next open keeps the newer.
    with open(outputs.failed, "a") as handle:
        handle.write("aaaaaaaaaaa,0.000,10.000,private,now private\n")
    ledger = Ledger(outputs)
    ledger.open()
    ledger.close()
    assert rows(outputs.failed)[1:] == [["aaaaaaaaaaa", "0.000", "10.000", "private", "now private"]]


def test_details_are_kept_on_one_line(tmp_path: Path) -> None:
    outputs, ledger = make(tmp_path)
    ledger.open()
    a = seg("aaaaaaaaaaa")
    detail = "line one\nline two\r\n" + "x" * 900
    ledger.record_failed(a.key, FailedRow(a.ytid, a.start_text, a.end_text, "ffmpeg_error", detail))
    ledger.close()
    text = outputs.failed.read_text()
    assert text.count("\n") == 2
    assert len(rows(outputs.failed)[1][4]) == 300
