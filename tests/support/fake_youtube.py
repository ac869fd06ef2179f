"""A stand-in for YouTube's metadata endpoints, served on 127.0.0.1.

pytube fetches three things from YouTube: the watch page (playability status),
the innertube ``player`` API (the stream manifest) and the player's ``base.js``
(the signature cipher). This module answers all three from the local server with
synthetic data. The one seam replaced is the host: ``reroute_pytube`` sends
pytube's requests for youtube.com to 127.0.0.1; everything else (parsing the page,
raising its exceptions, deciphering signatures with base.js, building Stream and
StreamQuery objects) is pytube's own code.

The base.js below is small but real JavaScript in YouTube's shape: pytube's cipher
module finds the transform functions in it and deciphers ``s`` (reverse, drop 2,
swap with 5) and ``n`` (reverse). The media route refuses (403) a URL whose
signature or n was not deciphered correctly, as YouTube does.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from .server import Handler, MediaServer, Reply

PLAYER_JS_PATH = "/s/player/0a1b2c3d/player_ias.vflset/en_US/base.js"

BASE_JS = r"""var XY={rv:function(a){a.reverse()}, sp:function(a,b){a.splice(0,b)}, sw:function(a,b){var c=a[0];a[0]=a[b%a.length];a[b%a.length]=c}};
Qb=function(a){a=a.split("");XY.rv(a,1);XY.sp(a,2);XY.sw(a,5);return a.join("")};
var Np=[Nf];
c&&d.set(b,encodeURIComponent(Qb(decodeURIComponent(c))));
a.D&&(b=a.get("n"))&&(b=Np[0](b),a.set("n",b));
Nf=function(a){var b=a.split(""),c=[function(d){d.reverse()},b,null];try{c[0](c[1])}catch(e){return"enhanced_except_"+a}return b.join("")};
"""


# YouTube gives every stream of a video the same n; pytube deciphers it once.
THROTTLE_N = "nThrottle42"


def decipher_signature(scrambled: str) -> str:
    """What BASE_JS's Qb computes, for the server to check pytube's answer."""
    chars = list(reversed(scrambled))[2:]
    swap = 5 % len(chars)
    chars[0], chars[swap] = chars[swap], chars[0]
    return "".join(chars)


# Every player response carries one; pytubefix reads the visitor id from it.
RESPONSE_CONTEXT = {"visitorData": "CgtGYWtlVmlzaXRvcg%3D%3D"}

# YouTube's own playability messages, as pytube reads them from the watch page.
STATUSES = {
    "ok": {"status": "OK"},
    "private": {"status": "LOGIN_REQUIRED",
                "messages": ["This is a private video. Please sign in to verify that you may see it."]},
    "unavailable": {"status": "ERROR", "reason": "Video unavailable"},
    "removed": {"status": "ERROR", "reason": "This video has been removed by the uploader"},
    "members_only": {"status": "UNPLAYABLE", "messages": [
        "Join this channel to get access to members-only content like this video, and other exclusive perks."]},
    "live": {"status": "OK", "liveStreamability": {}},
    "region_blocked": {"status": "UNPLAYABLE",
                       "reason": "The uploader has not made this video available in your country"},
    "bot_check": {"status": "LOGIN_REQUIRED", "reason": "Sign in to confirm you're not a bot"},
}


@dataclass
class FakeVideo:
    """One video: its status and which files its audio streams serve."""

    status: str = "ok"
    m4a: str = "tone300.m4a"
    webm: str = "tone300.webm"
    ciphered: bool = False  # serve signatureCipher streams that pytube must decipher
    audio: bool = True
    player_status: int = 200  # HTTP status of the player API (400: YouTube changed)
    media_url: str | None = None  # a hostile manifest: every stream's URL is this
    pictures: dict[int, str] = field(default_factory=dict)  # video-only streams: itag -> file


# What YouTube's itags promise, as pytube's own itag table has it.
VIDEO_ITAGS = {137: (1920, 1080), 136: (1280, 720), 134: (640, 360), 160: (256, 144)}


@dataclass
class FakeYouTube:
    server: MediaServer
    videos: dict[str, FakeVideo] = field(default_factory=dict)
    player_calls: Counter[str] = field(default_factory=Counter)  # per video id

    def __post_init__(self) -> None:
        self.server.routes.append(self.route)

    def route(self, handler: Handler) -> Reply | None:
        path = handler.url_path
        query = parse_qs(handler.query)
        if path == "/watch":
            return self._watch_page(query["v"][0])
        if path == "/youtubei/v1/player":
            # pytube sends the id in the query, pytubefix in the JSON body.
            video_id = query.get("videoId", [""])[0] or json.loads(getattr(handler, "body", b"") or b"{}")["videoId"]
            self.player_calls[video_id] += 1
            return self._player(video_id)
        if path == PLAYER_JS_PATH:
            return Reply(200, BASE_JS.encode(), (("Content-Type", "text/javascript"),))
        if "sig" in query or "signature" in query:
            return self._check_signed(query)
        return None

    def _video(self, ytid: str) -> FakeVideo | None:
        return self.videos.get(ytid)

    def _watch_page(self, ytid: str) -> Reply:
        video = self._video(ytid)
        status = STATUSES[video.status] if video else STATUSES["unavailable"]
        page = (
            "<html><head><script>var ytInitialPlayerResponse = "
            + json.dumps({"playabilityStatus": status})
            + ";</script><script>var cfg = {\"jsUrl\":\"" + PLAYER_JS_PATH + "\"};</script></head></html>"
        )
        return Reply(200, page.encode(), (("Content-Type", "text/html"),))

    def _player(self, ytid: str) -> Reply:
        video = self._video(ytid)
        if video is not None and video.player_status != 200:
            return Reply(video.player_status, b'{"error": {"code": 400}}')
        if video is None or video.status != "ok":
            status = STATUSES[video.status] if video else STATUSES["unavailable"]
            body = {"responseContext": RESPONSE_CONTEXT, "playabilityStatus": status}
            if video is not None and video.status == "live":  # today's sign of a live video
                body["videoDetails"] = {"videoId": ytid, "isLive": True, "title": "live", "lengthSeconds": "0"}
            return Reply(200, json.dumps(body).encode())
        formats = list(self._formats(ytid, video))
        body = {
            "responseContext": RESPONSE_CONTEXT,
            "playabilityStatus": {"status": "OK"},
            "streamingData": {"formats": [], "adaptiveFormats": formats},
            "videoDetails": {"videoId": ytid, "title": f"synthetic {ytid}", "lengthSeconds": "300",
                             "viewCount": "1", "author": "tests"},
            "playerConfig": {"mediaCommonConfig": {"mediaUstreamerRequestConfig": {
                "videoPlaybackUstreamerConfig": "c3ludGhldGlj"}}},
        }
        return Reply(200, json.dumps(body).encode(), (("Content-Type", "application/json"),))

    def _formats(self, ytid: str, video: FakeVideo) -> Iterator[dict]:
        # At least one video-only stream, so "audio only" is really filtered.
        for itag, file in (video.pictures or {137: video.m4a}).items():
            yield self._format(itag, 'video/mp4; codecs="avc1.640028"', VIDEO_ITAGS[itag][1] * 4000, file, video)
        if not video.audio:
            return
        yield self._format(139, 'audio/mp4; codecs="mp4a.40.5"', 48_000, video.m4a, video)
        yield self._format(140, 'audio/mp4; codecs="mp4a.40.2"', 130_000, video.m4a, video)
        yield self._format(250, 'audio/webm; codecs="opus"', 70_000, video.webm, video)
        yield self._format(251, 'audio/webm; codecs="opus"', 160_000, video.webm, video)

    def _format(self, itag: int, mime: str, bitrate: int, file: str, video: FakeVideo) -> dict:
        # The fields YouTube gives every adaptive format (the libraries read several of them).
        entry = {"itag": itag, "mimeType": mime, "bitrate": bitrate, "averageBitrate": bitrate,
                 "contentLength": str((self.server.root / file).stat().st_size), "approxDurationMs": "300000",
                 "lastModified": "1700000000000000", "quality": "tiny", "projectionType": "RECTANGULAR"}
        if mime.startswith("audio/"):
            entry.update({"audioQuality": "AUDIO_QUALITY_MEDIUM", "audioChannels": 2,
                          "audioSampleRate": "44100" if "mp4" in mime else "48000"})
        else:
            width, height = VIDEO_ITAGS[itag]
            entry.update({"width": width, "height": height, "fps": 30, "qualityLabel": f"{height}p"})
        media = self.server.url(file)
        if video.ciphered:
            scrambled = f"SIG{itag}abcdefghijklmnopqrstuvwxyz0123456789"
            url = f"{media}?" + urlencode({"itag": itag, "n": THROTTLE_N})
            entry["signatureCipher"] = urlencode({"s": scrambled, "sp": "sig", "url": url})
        else:  # pre-signed, as YouTube serves many videos: no deciphering needed
            entry["url"] = f"{media}?" + urlencode({"itag": itag, "signature": "presigned"})
        if video.media_url is not None:
            entry.pop("signatureCipher", None)
            entry["url"] = video.media_url
        return entry

    def _check_signed(self, query: dict[str, list[str]]) -> Reply | None:
        if "signature" in query:
            return None  # pre-signed: serve the file
        itag = query.get("itag", ["0"])[0]
        expected_sig = decipher_signature(f"SIG{itag}abcdefghijklmnopqrstuvwxyz0123456789")
        expected_n = THROTTLE_N[::-1]
        if query["sig"][0] != expected_sig or query.get("n", [""])[0] != expected_n:
            return Reply(403, b"bad signature")
        return None


@contextmanager
def reroute_pytube(server: MediaServer | str, module: str = "pytube") -> Iterator[None]:
    """Send pytube's requests for youtube.com to the local server: the one replaced seam."""
    import importlib

    base_url = server if isinstance(server, str) else server.base_url

    request = importlib.import_module(f"{module}.request")
    original = request._execute_request

    def execute(url: str, *args, **kwargs):
        parts = urlsplit(url)
        if parts.hostname and parts.hostname.endswith("youtube.com"):
            url = f"{base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        return original(url, *args, **kwargs)

    request._execute_request = execute
    try:
        yield
    finally:
        request._execute_request = original
