"""Every YouTube-window list, recognised by its first lines: AudioCaps and MusicCaps from excerpts of the
published lists, VGGSound, AudioSet strong labels, Kinetics and COLUMNS from fixtures in their documented shape."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.lists import list_format, read_list
from audioset_downloader.inputs.segments import InvalidRow, Segment
from audioset_downloader.inputs.settings import Columns, Settings
from tests.conftest import REPO, Mirror, run_script, write_config

DATA = Path(__file__).parent / "data"
SETTINGS = Settings()

VGGSOUND = '---g-f_I2yQ,1,people marching,test\n--9O4XZOge4,30,"female speech, woman speaking",train\n'
STRONG = ("segment_id\tstart_time_seconds\tend_time_seconds\tlabel\n"
          "s9d-2nhuJCQ_30000\t2.627\t7.237\t/m/053hz1\n"
          "s9d-2nhuJCQ_30000\t0.000\t1.500\t/m/09x0r\n"
          "a_b-cdefghi_0\t0.5\t9.5\t/m/04rlf\n")
POSNEG = ("segment_id\tstart_time_seconds\tend_time_seconds\tlabel\tpresent\n"
          "s9d-2nhuJCQ_30000\t0.000\t0.960\t/m/053hz1\tPRESENT\n"
          "s9d-2nhuJCQ_30000\t0.000\t0.960\t/m/09x0r\tNOT_PRESENT\n")
KINETICS = "label,youtube_id,time_start,time_end,split,is_cc\nplaying drums,abcdefghijk,12,22,train,0\n"
CUSTOM = "video_id\tt0\tnote\nabcdefghijk\t4.5\tx\n"


def rows_of(path: Path, settings: Settings = SETTINGS) -> list[Segment | InvalidRow]:
    return list(read_list(path, settings))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_audiocaps_five_captions_of_a_window_are_one_clip_of_ten_seconds_from_its_start() -> None:
    path = DATA / "audiocaps_v1_val_excerpt.csv"
    with open(path, newline="") as handle:
        published = list(csv.DictReader(handle))
    assert list_format(path, SETTINGS).NAME == "AudioCaps"
    segments = rows_of(path)
    assert len(published) == 15 and len(segments) == 3  # five rows a window
    lines = {}
    for segment in segments:
        assert type(segment) is Segment and segment.open_end
        assert segment.end_ms - segment.start_ms == 10_000
        notes = json.loads(segment.notes)
        mine = [row for row in published if row["youtube_id"] == segment.ytid]
        assert notes["dataset"] == "AudioCaps" and len(notes["captions"]) == 5
        assert notes["captions"] == [row["caption"] for row in mine]
        assert notes["audiocap_ids"] == [row["audiocap_id"] for row in mine]
        assert segment.start_ms == int(mine[0]["start_time"]) * 1000
        lines[segment.ytid] = segment.line
    # The line is the window's first row's, as a failed row is reported at.
    assert lines[published[0]["youtube_id"]] == 2


def test_musiccaps_reads_mids_flags_and_the_aspect_list_as_data() -> None:
    path = DATA / "musiccaps_excerpt.csv"
    assert list_format(path, SETTINGS).NAME == "MusicCaps"
    first = rows_of(path)[0]
    assert type(first) is Segment and not first.open_end
    assert (first.ytid, first.start_ms, first.end_ms) == ("-0Gj8-vB1q4", 30_000, 40_000)
    assert first.labels_text == "/m/0140xf,/m/02cjck,/m/04rlf"
    notes = json.loads(first.notes)
    assert notes["aspect_list"][:2] == ["low quality", "sustained strings melody"] and len(notes["aspect_list"]) == 7
    assert notes["is_balanced_subset"] is False and notes["is_audioset_eval"] is True and notes["author_id"] == "4"


def test_vggsound_strong_kinetics_and_columns_in_their_documented_shape(tmp_path: Path) -> None:
    vgg = rows_of(write(tmp_path, "vggsound.csv", VGGSOUND))
    assert [(s.ytid, s.start_ms, s.end_ms, s.open_end) for s in vgg] == [
        ("---g-f_I2yQ", 1000, 11000, True), ("--9O4XZOge4", 30000, 40000, True)]
    assert json.loads(vgg[1].notes) == {"dataset": "VGGSound", "label": "female speech, woman speaking",
                                        "split": "train"}

    strong = rows_of(write(tmp_path, "strong.tsv", STRONG))
    assert [(s.ytid, s.start_ms, s.end_ms, s.labels_text) for s in strong] == [
        ("s9d-2nhuJCQ", 30000, 40000, "/m/053hz1,/m/09x0r"), ("a_b-cdefghi", 0, 10000, "/m/04rlf")]  # last _
    assert json.loads(strong[0].notes)["events"][0] == {"onset": 2.627, "offset": 7.237, "mid": "/m/053hz1",
                                                        "present": True}
    posneg = rows_of(write(tmp_path, "posneg.tsv", POSNEG))
    assert posneg[0].labels_text == "/m/053hz1"  # the absent one is an event, not a label
    assert [e["present"] for e in json.loads(posneg[0].notes)["events"]] == [True, False]

    kinetics = rows_of(write(tmp_path, "kinetics.csv", KINETICS))
    assert [(s.ytid, s.start_ms, s.end_ms, s.open_end) for s in kinetics] == [("abcdefghijk", 12000, 22000, False)]
    assert list_format(tmp_path / "kinetics.csv", SETTINGS).NAME == "Kinetics"

    custom = write(tmp_path, "custom.tsv", CUSTOM)
    with pytest.raises(ConfigError, match=r"custom.tsv:1: a list of no known shape \(first line 'video_id\\tt0"):
        rows_of(custom)
    chosen = Settings(columns=Columns("video_id", "t0", None), clip_seconds=5)
    assert [(s.ytid, s.start_ms, s.end_ms, s.open_end) for s in rows_of(custom, chosen)] == [
        ("abcdefghijk", 4500, 9500, True)]


@pytest.mark.parametrize(("content", "problem"), [
    ('audiocap_id,youtube_id,start_time,caption\n1,abcdefghijk,0,"a caption\x00 with a NUL"\n', "NUL"),
    ('audiocap_id,youtube_id,start_time,caption\n1,abcdefghijk,0,"a quote never closed\n', "quote is never closed"),
    ("audiocap_id,youtube_id,start_time,caption\n1,abcdefghijk,0," + "x" * 50_000_000 + "\n", "a field longer"),
    ("ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,"
     "is_audioset_eval\nabcdefghijk,0,10,/m/a,\"__import__('os').system('touch /tmp/pwned')\",c,1,False,False\n",
     "is not a list of quoted strings"),
    ("audiocap_id,youtube_id,start_time,caption\n1,../../etc/pa,0,x\n", "is not 11 characters"),
])
def test_hostile_rows_are_invalid_rows_that_say_why(tmp_path: Path, content: str, problem: str) -> None:
    rows = rows_of(write(tmp_path, "hostile.csv", content))
    assert len(rows) == 1 and type(rows[0]) is InvalidRow and problem in rows[0].problem, rows
    assert rows[0].line == 2 and len("|".join(rows[0].fields)) < 1000  # short enough for failed.csv
    assert not Path("/tmp/pwned").exists()


HEADERS = [b"audiocap_id,youtube_id,start_time,caption", b"segment_id\tstart_time_seconds\tend_time_seconds\tlabel",
           b"ytid,start_s,end_s,audioset_positive_labels,aspect_list,caption,author_id,is_balanced_subset,"
           b"is_audioset_eval", b"label,youtube_id,time_start,time_end,split", b"abcdefghijk,1,dog barking,train"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=st.sampled_from(HEADERS), lines=st.lists(st.binary(max_size=60), max_size=6))
@example(header=HEADERS[2], lines=[b"abcdefghijk,0,10,,\"['a', 'b\\\\'c']\",x,1,True,True"])
@example(header=HEADERS[1], lines=[b"abcdefghijk_99999999999\t0\t1\t/m/a", b"_\t\t\t"])
def test_any_bytes_after_a_known_header_give_windows_or_invalid_rows(tmp_path: Path, header: bytes,
                                                                     lines: list[bytes]) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(b"\n".join([header, *lines]))
    for row in rows_of(path):
        assert type(row) in (Segment, InvalidRow)
        if type(row) is Segment:
            assert 0 <= row.start_ms < row.end_ms and json.loads(row.notes)["dataset"]
        else:
            assert row.problem and row.line >= 1
            "|".join(row.fields).encode("utf-8")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.binary(max_size=50), max_size=6), tab=st.booleans())
def test_any_bytes_under_a_columns_header_give_windows_or_invalid_rows(tmp_path: Path, lines: list[bytes],
                                                                       tab: bool) -> None:
    path = tmp_path / "fuzz.tsv"
    separator = b"\t" if tab else b","
    path.write_bytes(b"\n".join([separator.join([b"video_id", b"t0", b"t1"]), *lines]))
    chosen = Settings(columns=Columns("video_id", "t0", "t1" if tab else None))
    for row in rows_of(path, chosen):
        assert type(row) in (Segment, InvalidRow)
        if type(row) is Segment:
            assert 0 <= row.start_ms < row.end_ms and row.open_end is (not tab)


def test_a_list_of_no_known_shape_stops_the_run_with_one_line(tmp_path: Path) -> None:
    write(tmp_path, "mystery.csv", "clip,when\nabcdefghijk,3\n")
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=["mystery.csv"], OUTPUT_DIR=str(tmp_path / "out"))
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: mystery.csv:1: a list of no known shape (first line 'clip,when'); known: AudioSet strong, AudioCaps, "
        "MusicCaps, Kinetics, VGGSound, AudioSet; for another list with a header, set COLUMNS, e.g. "
        '{"ytid": "video_id", "start": "t0", "end": None}']
    assert not (tmp_path / "out").exists()


def test_audiocaps_end_to_end_windows_cut_at_the_videos_end_and_a_rerun_fetches_nothing(
        tmp_path: Path, mirror: Mirror) -> None:
    """tone20 lasts 20 s: a window from 5 s is whole, from 14 s is cut at 20 s, from 25 s does not exist."""
    for ytid in ("wholeWindow", "shortWindow", "pastTheEnd1"):
        mirror.add(ytid, "tone20.m4a")
    listed = write(tmp_path, "audiocaps_val.csv", "audiocap_id,youtube_id,start_time,caption\n"
                                                  "1,wholeWindow,5,a tone\n2,shortWindow,14,\"a tone, cut\"\n"
                                                  "3,pastTheEnd1,25,silence\n4,wholeWindow,5,the same tone\n")
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(listed)], OUTPUT_DIR=str(tmp_path / "out"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, AUDIO_FORMAT="wav")
    dry = run_script("--config", "cfg.py", "--dry-run", cwd=tmp_path)
    assert dry.stdout.startswith(f"{listed} (AudioCaps): 3 rows (3 valid, 0 invalid);"), dry.stdout
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0
    out = tmp_path / "out"
    with open(out / "audiocaps_val.split-pos.csv", newline="") as handle:
        written = {row["YTID"]: row for row in csv.DictReader(handle)}
    assert {ytid: (row["start_seconds"], row["end_seconds"]) for ytid, row in written.items()} == {
        "wholeWindow": ("5.000", "15.000"), "shortWindow": ("14.000", "20.000")}
    import soundfile
    info = soundfile.info(str(out / written["shortWindow"]["file"]))
    assert abs(info.duration - 6.0) < 0.05  # its real end, the video's
    with open(out / "audiocaps_val.failed.csv", newline="") as handle:
        failed = {row["YTID"]: row["reason"] for row in csv.DictReader(handle)}
    assert failed == {"pastTheEnd1": "window_out_of_range"}
    metadata_path = out / "audiocaps_val" / "metadata.csv"
    with open(metadata_path, newline="") as handle:
        metadata = {row["YTID"]: row for row in csv.DictReader(handle)}
    assert metadata["wholeWindow"]["dataset"] == "AudioCaps"
    assert json.loads(metadata["wholeWindow"]["captions"]) == ["a tone", "the same tone"]  # two rows, one clip
    assert json.loads(metadata["wholeWindow"]["audiocap_ids"]) == ["1", "4"]
    assert json.loads(metadata["shortWindow"]["captions"]) == ["a tone, cut"]
    requests = sum(mirror.server.requests.values())
    metadata_path.unlink()  # as a kill between the two manifests' rows could leave it: rebuilt from the list
    again = run_script("--config", "cfg.py", cwd=tmp_path)
    assert again.returncode == 0 and sum(mirror.server.requests.values()) == requests  # nothing fetched again
    assert "0 written" in again.stderr and "2 skipped (already done)" in again.stderr
    with open(metadata_path, newline="") as handle:
        assert {row["YTID"]: row for row in csv.DictReader(handle)} == metadata


def test_a_dataset_list_s_bad_rows_keep_their_line_and_raw_row_and_are_warned_of_once(tmp_path: Path,
                                                                                     mirror: Mirror) -> None:
    mirror.add("capsGoodRow")
    bad = [f"{n},bad{n:08d},5,a tone, and a comma unquoted" for n in range(82)]  # five fields, not four
    listed = write(tmp_path, "audiocaps_val.csv", "audiocap_id,youtube_id,start_time,caption\n"
                   + "".join(line + "\n" for line in bad) + "99,capsGoodRow,5,a good row\n")
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(listed)], OUTPUT_DIR=str(tmp_path / "out"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format)
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    # Before: a warning a row (82 of them).
    assert len(warnings) == 1 and f"{listed}: skipped 82 invalid rows, on lines 2, 3, 4, 5, 6 and 77 more; the " \
        "first, line 2: expected 4 fields, as AudioCaps's rows have, found 5" in warnings[0], warnings
    with open(tmp_path / "out" / "audiocaps_val.failed.csv", newline="") as handle:
        failed = list(csv.DictReader(handle))
    # Before: the audiocap_id stood under YTID and the YTID under start_seconds.
    assert [(row["YTID"], row["start_seconds"], row["reason"]) for row in failed] == [
        (f"bad{n:08d}", "", "invalid_row") for n in range(82)]
    assert all(row["detail"] == f"line {n + 2}: expected 4 fields, as AudioCaps's rows have, found 5; the row: "
               f"{bad[n]}" for n, row in enumerate(failed))
    again = run_script("--config", "cfg.py", cwd=tmp_path)  # a rerun records them again, once each
    with open(tmp_path / "out" / "audiocaps_val.failed.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 82 and again.returncode == 0


def test_an_audiocaps_list_downloaded_in_two_shards_and_merged_keeps_its_captions(tmp_path: Path,
                                                                                   mirror: Mirror) -> None:
    ids = ["capsShard00", "capsShard01", "capsShard02", "capsShard03"]
    for ytid in ids:
        mirror.add(ytid)
    listed = write(tmp_path, "audiocaps_val.csv", "audiocap_id,youtube_id,start_time,caption\n" + "".join(
        f'{n},{ytid},{n},"caption {n}, of {ytid}"\n' for n, ytid in enumerate(ids)))
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(listed)], OUTPUT_DIR=str(tmp_path / "merged"), TIMER=0,
                 BACKEND="direct", YTB_URL_FORMAT=mirror.url_format)
    for k in (0, 1):
        shard = run_script("--config", "cfg.py", "--shard", f"{k}/2", "--output-dir", f"s{k}", cwd=tmp_path)
        assert shard.returncode == 0, shard.stderr
    merged = run_script("--config", "cfg.py", "--merge", "s0", "s1", cwd=tmp_path)
    assert merged.returncode == 0 and "audiocaps_val: 4 clips added" in merged.stdout, merged.stdout
    with open(tmp_path / "merged" / "audiocaps_val" / "metadata.csv", newline="") as handle:
        metadata = {row["YTID"]: row for row in csv.DictReader(handle)}
    # Before, the merge wrote AudioSet's columns only: no dataset, no captions, no audiocap_ids.
    assert set(metadata) == set(ids)
    for n, ytid in enumerate(ids):
        assert metadata[ytid]["dataset"] == "AudioCaps"
        assert json.loads(metadata[ytid]["captions"]) == [f"caption {n}, of {ytid}"]
        assert json.loads(metadata[ytid]["audiocap_ids"]) == [str(n)]


def test_each_sets_annotations_travel_with_its_clips_in_the_webdataset_layout(tmp_path: Path,
                                                                              mirror: Mirror) -> None:
    import tarfile

    for ytid in ("-0Gj8-vB1q4", "---g-f_I2yQ", "s9d-2nhuJCQ"):
        mirror.add(ytid)
    (tmp_path / "musiccaps.csv").write_text((DATA / "musiccaps_excerpt.csv").read_text().splitlines(True)[0]
                                            + (DATA / "musiccaps_excerpt.csv").read_text().splitlines(True)[1])
    write(tmp_path, "vggsound.csv", VGGSOUND.splitlines(True)[0])
    write(tmp_path, "strong.tsv", STRONG.rsplit("\n", 2)[0] + "\n")
    lists = ["musiccaps.csv", "vggsound.csv", "strong.tsv"]
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(tmp_path / name) for name in lists], TIMER=0,
                 OUTPUT_DIR=str(tmp_path / "out"), BACKEND="direct", YTB_URL_FORMAT=mirror.url_format,
                 AUDIO_FORMAT="flac", OUTPUT_LAYOUT="webdataset", ONTOLOGY_FILE=str(REPO / "data" / "ontology.json"))
    assert run_script("--config", "cfg.py", cwd=tmp_path).returncode == 0

    def sample(name: str) -> dict:
        with tarfile.open(tmp_path / "out" / name / f"{name}-000000.tar") as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(".json"))
            return json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]

    music = sample("musiccaps")
    assert music["dataset"] == "MusicCaps" and music["labels"] == ["/m/0140xf", "/m/02cjck", "/m/04rlf"]
    assert music["aspect_list"][0] == "low quality" and music["is_audioset_eval"] is True
    assert music["caption"].startswith("The low quality recording features a ballad song")
    vgg = sample("vggsound")
    assert (vgg["dataset"], vgg["label"], vgg["split"], vgg["label_names"]) == (
        "VGGSound", "people marching", "test", ["people marching"])
    assert (vgg["start_seconds"], vgg["end_seconds"]) == (1.0, 11.0)
    strong = sample("strong")
    assert strong["dataset"] == "AudioSet strong" and strong["labels"] == ["/m/053hz1", "/m/09x0r"]
    assert strong["events"] == [
        {"onset": 2.627, "offset": 7.237, "mid": "/m/053hz1", "present": True, "name": "Cheering"},
        {"onset": 0.0, "offset": 1.5, "mid": "/m/09x0r", "present": True, "name": "Speech"}]
    with open(tmp_path / "out" / "vggsound.split-pos.csv", newline="") as handle:
        assert next(csv.DictReader(handle))["label_names"] == "people marching"  # split-pos keeps its columns


def test_the_excerpts_are_from_the_published_lists() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets"
    if not shared.is_dir():
        pytest.skip("../shared/datasets is not beside this checkout")
    published = (shared / "audiocaps_v1_val.csv").read_text().splitlines()
    assert all(line in published for line in (DATA / "audiocaps_v1_val_excerpt.csv").read_text().splitlines())
    assert (shared / "musiccaps-public.csv").read_text().startswith((DATA / "musiccaps_excerpt.csv").read_text())


def test_label_filters_and_the_report_speak_each_sets_classes(tmp_path: Path) -> None:
    write(tmp_path, "vggsound.csv", VGGSOUND + "abcdefghijk,5,People Marching,train\n")
    write(tmp_path, "musiccaps.csv", (DATA / "musiccaps_excerpt.csv").read_text())
    write_config(tmp_path / "vgg.py", CSV_FILE_NAMES=["vggsound.csv"], OUTPUT_DIR=str(tmp_path / "out"),
                 LABELS=["people MARCHING"])
    dry = run_script("--config", "vgg.py", "--dry-run", cwd=tmp_path)
    assert "3 rows (3 valid, 0 invalid); 1 left out by the label filters" in dry.stdout, dry.stderr  # any case

    write_config(tmp_path / "typo.py", CSV_FILE_NAMES=["vggsound.csv"], OUTPUT_DIR=str(tmp_path / "out"),
                 EXCLUDE_LABELS=["female speech woman speaking"])
    typo = run_script("--config", "typo.py", "--dry-run", cwd=tmp_path)
    assert typo.returncode == 2 and typo.stderr == (
        "error: EXCLUDE_LABELS: no VGGSound class in this list is called 'female speech woman speaking'; "
        "did you mean 'female speech, woman speaking'?\n")

    # MusicCaps carries AudioSet MIDs: LABELS by AudioSet name, as for AudioSet itself.
    write_config(tmp_path / "music.py", CSV_FILE_NAMES=["musiccaps.csv"], OUTPUT_DIR=str(tmp_path / "out"),
                 LABELS=["guitar"])  # /m/0342h, on one of the four windows
    music = run_script("--config", "music.py", "--dry-run", cwd=tmp_path)
    assert "4 rows (4 valid, 0 invalid); 3 left out by the label filters" in music.stdout, music.stdout

    write_config(tmp_path / "report.py", CSV_FILE_NAMES=["vggsound.csv"], OUTPUT_DIR=str(tmp_path / "out"))
    assert run_script("--config", "report.py", "--report", cwd=tmp_path).returncode == 0
    with open(tmp_path / "out" / "vggsound.report.csv", newline="") as handle:
        report = {row["name"]: (row["mid"], row["segments"]) for row in csv.DictReader(handle)}
    assert report == {"people marching": ("", "1"), "female speech, woman speaking": ("", "1"),
                      "People Marching": ("", "1")}


def test_kinetics_and_a_columns_list_end_to_end(tmp_path: Path, mirror: Mirror) -> None:
    for ytid in ("abcdefghijk", "customClip1"):
        mirror.add(ytid)
    write(tmp_path, "kinetics.csv", KINETICS)
    write(tmp_path, "custom.tsv", "video_id\tt0\tnote\ncustomClip1\t40.5\tx\n")
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=["kinetics.csv", "custom.tsv"], OUTPUT_DIR=str(tmp_path / "out"),
                 TIMER=0, BACKEND="direct", YTB_URL_FORMAT=mirror.url_format, AUDIO_FORMAT="wav",
                 COLUMNS={"ytid": "video_id", "start": "t0", "end": None}, CLIP_SECONDS=4)
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    from tests.support.audio import decode, window_offset

    for name, ytid, start, seconds in (("kinetics", "abcdefghijk", 12, 10), ("custom", "customClip1", 40.5, 4)):
        with open(tmp_path / "out" / f"{name}.split-pos.csv", newline="") as handle:
            row = next(csv.DictReader(handle))
        assert (row["YTID"], float(row["start_seconds"]), float(row["end_seconds"])) == (ytid, start, start + seconds)
        clip = decode(tmp_path / "out" / row["file"])
        assert abs(clip.duration - seconds) < 0.03 and abs(window_offset(clip, start)) < 0.02
    card = (tmp_path / "out" / "kinetics.README.md").read_text()
    assert card.startswith("# Kinetics `kinetics.csv`: audio clips") and "@article{kay2017kinetics" in card
    assert (tmp_path / "out" / "custom.README.md").read_text().startswith("# Windows `custom.tsv`: audio clips")


def test_a_quoted_caption_may_hold_newlines_and_a_quote_never_closed_spoils_only_its_line(tmp_path: Path) -> None:
    header = HEADERS[2].decode()
    listed = write(tmp_path, "musiccaps.csv", header + "\n"
                   'abcdefghij1,0,10,/m/04rlf,"[\'a\']","A caption\nover two lines, ""quoted""",1,False,False\n'
                   'abcdefghij2,0,10,/m/04rlf,"[\'b\']","a quote never closed,1,False,False\n'
                   'abcdefghij3,0,10,/m/04rlf,"[\'c\']",fine,1,False,False\n')
    rows = rows_of(listed)
    assert [(type(row).__name__, row.line) for row in rows] == [("Segment", 2), ("InvalidRow", 4), ("Segment", 5)]
    assert json.loads(rows[0].notes)["caption"] == 'A caption\nover two lines, "quoted"'


def test_the_published_musiccaps_list_reads_as_its_5521_windows() -> None:
    """The published list holds captions over several lines: every one of its 5,521 rows is a window."""
    shared = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "musiccaps-public.csv"
    if not shared.is_file():
        pytest.skip("../shared/datasets/musiccaps-public.csv is not beside this checkout (CI has it)")
    assert sum(type(row) is Segment for row in rows_of(shared)) == 5521
