"""YouTube's words, as yt-dlp, pytubefix and pytube relay them, map onto the right reason.

Each message below is quoted from the library that produces it (yt-dlp 2026.10.26's
extractor/youtube/_video.py, pytubefix 11.2.1's and pytube 15.0.0's exceptions.py and
__main__.py), with the video id where the library puts one. Every phrase of the table
must be exercised here: a phrase added without a message fails the last test.
"""

from __future__ import annotations

import pytest

from audioset_downloader.errors import FailureReason as R
from audioset_downloader.fetch.backends.base import MESSAGE_REASONS, reason_from_message

MESSAGES: list[tuple[str, str, R]] = [
    # (the phrase it should be read by, the message, the reason)
    ("not a bot", "[youtube] abcdefghijk: Sign in to confirm you’re not a bot. Use --cookies-from-browser or "
                  "--cookies for the authentication.", R.BOT_CHECK),
    ("detected as a bot", "abcdefghijk This request was detected as a bot. DO NOT OPEN AN ISSUE! See more details "
                          "at https://pytubefix.readthedocs.io/en/latest/user/po_token.html", R.BOT_CHECK),
    ("too many requests", "[youtube] abcdefghijk: Unable to download webpage: HTTP Error 429: Too Many Requests",
     R.RATE_LIMITED),
    ("try again later", "[youtube] abcdefghijk: This content isn't available, try again later.", R.RATE_LIMITED),
    ("try again later", "[youtube] abcdefghijk: This content isn't available, try again later. The current session "
                        "has been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to "
                        "add a delay between video requests to avoid exceeding the rate limit. For more "
                        "information, refer to  https://github.com/yt-dlp/yt-dlp/wiki/Extractors"
                        "#this-content-isnt-available-try-again-later", R.RATE_LIMITED),
    ("rate-limited", "[youtube] abcdefghijk: Your account has been rate-limited by YouTube for up to an hour.",
     R.RATE_LIMITED),
    ("confirm your age", "[youtube] abcdefghijk: Sign in to confirm your age. This video may be inappropriate for "
                         "some users.", R.AGE_RESTRICTED),
    ("age-restricted", "[youtube] abcdefghijk: This video is age-restricted and YouTube is requiring account age "
                       "verification to confirm your age", R.AGE_RESTRICTED),
    ("age restrict", "abcdefghijk is age restricted, and can't be accessed without logging in.", R.AGE_RESTRICTED),
    ("age restrict", "abcdefghijk has age restrictions and cannot be accessed without confirmation.",
     R.AGE_RESTRICTED),
    ("inappropriate for some users", "abcdefghijk may be inappropriate for some users.", R.AGE_RESTRICTED),
    ("private video", "[youtube] abcdefghijk: Private video. Sign in if you've been granted access to this video",
     R.PRIVATE),
    ("private video", "abcdefghijk is a private video", R.PRIVATE),
    ("members-only", "[youtube] abcdefghijk: Join this channel to get access to members-only content like this "
                     "video, and other exclusive perks.", R.MEMBERS_ONLY),
    ("members-only", "abcdefghijk is a members-only video", R.MEMBERS_ONLY),
    ("in your country", "[youtube] abcdefghijk: The uploader has not made this video available in your country",
     R.REGION_BLOCKED),
    ("in your country", "abcdefghijk Video unavailable. The uploader has blocked it in your country on copyright "
                        "grounds", R.REGION_BLOCKED),
    ("in your region", "abcdefghijk is not available in your region", R.REGION_BLOCKED),
    ("removed", "[youtube] abcdefghijk: This video has been removed by the uploader", R.REMOVED),
    ("removed", "abcdefghijk This video has been removed for violating YouTube's Community Guidelines",
     R.REMOVED),
    ("terminated", "[youtube] abcdefghijk: This video is no longer available because the YouTube account "
                   "associated with this video has been terminated.", R.REMOVED),
    ("copyright", "[youtube] abcdefghijk: Video unavailable. This video is no longer available due to a "
                  "copyright claim by Some Label", R.REMOVED),
    ("live event", "[youtube] abcdefghijk: This live event will begin in 3 hours.", R.LIVE),
    ("live event", "abcdefghijk This live event has ended.", R.LIVE),
    ("streaming live", "abcdefghijk is streaming live and cannot be loaded", R.LIVE),
    ("video unavailable", "[youtube] abcdefghijk: Video unavailable", R.UNAVAILABLE),
    ("not available", "[youtube] abcdefghijk: This video is not available", R.UNAVAILABLE),
    ("not available", "abcdefghijk This live stream recording is not available.", R.UNAVAILABLE),
    ("is unavailable", "abcdefghijk is unavailable", R.UNAVAILABLE),
]


@pytest.mark.parametrize(("phrase", "message", "reason"), MESSAGES, ids=[m[1][:50] for m in MESSAGES])
def test_each_message_reads_as_its_reason(phrase: str, message: str, reason: R) -> None:
    assert phrase in message.lower()
    assert reason_from_message(message) is reason


def test_messages_that_name_no_reason_stay_unknown() -> None:
    # A broken backend, not a video: the caller decides (backend_error), never a permanent reason.
    for message in ("HTTP Error 400: Bad Request",
                    "get_throttling_function_name: could not find match for multiple",
                    "abcdefghijk : VISION_OS client did not receive a response from YouTube"):
        assert reason_from_message(message) is None


def test_every_phrase_of_the_table_has_a_message() -> None:
    tested = {(phrase, reason) for phrase, _, reason in MESSAGES}
    assert set(MESSAGE_REASONS) == tested
