"""A stand-in for YouTube's metadata endpoints, served on 127.0.0.1.

pytube, pytubefix and yt-dlp fetch the same few things from YouTube: the watch
page (playability status), the innertube ``player`` API (the stream manifest, one
call per player client) and the player's ``base.js`` (the signature cipher). This
module answers them from the local server with synthetic data. The one seam
replaced is the host: ``reroute_youtube`` sends the libraries' requests for
youtube.com to 127.0.0.1; everything else (parsing the page and the player
responses, raising their exceptions, deciphering signatures with base.js, choosing
formats) is the libraries' own code.

Like YouTube, the fake answers each player client on its own terms: it can refuse
named clients (today's YouTube answers pytube's ANDROID_MUSIC client with HTTP
400), serve ciphered formats to some and pre-signed ones to others, and serve a
base.js of today's shape that pytube's regexes cannot read.

The base.js below is small but real JavaScript in YouTube's shape: pytube's cipher
module finds the transform functions in it and deciphers ``s`` (reverse, drop 2,
swap with 5) and ``n`` (reverse). The media route refuses (403) a URL whose
signature or n was not deciphered correctly, as YouTube does.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from urllib.parse import parse_qs, urlencode, urlsplit

from .server import Handler, MediaServer, Reply

BASE_JS = r"""var XY={rv:function(a){a.reverse()}, sp:function(a,b){a.splice(0,b)}, sw:function(a,b){var c=a[0];a[0]=a[b%a.length];a[b%a.length]=c}};
Qb=function(a){a=a.split("");XY.rv(a,1);XY.sp(a,2);XY.sw(a,5);return a.join("")};
var Np=[Nf];
c&&d.set(b,encodeURIComponent(Qb(decodeURIComponent(c))));
a.D&&(b=a.get("n"))&&(b=Np[0](b),a.set("n",b));
Nf=function(a){var b=a.split(""),c=[function(d){d.reverse()},b,null];try{c[0](c[1])}catch(e){return"enhanced_except_"+a}return b.join("")};
"""


# Today's player: its n-function is no longer in the shape pytube's regexes look for,
# so pytube's cipher raises RegexMatchError (get_throttling_function_name).
MODERN_BASE_JS = r"""var XY={rv:function(a){a.reverse()}};
Qb=function(a){a=a.split("");XY.rv(a,1);return a.join("")};
(function(g){var q=g.n;g.n=q&&q.split("").reverse().join("")})(this);
"""

# The player client pytube 15 asks the innertube API with (pytube/innertube.py).
PYTUBE_CLIENT = "ANDROID_MUSIC"

# Clients that run no JS player (pytubefix's default, visionOS): YouTube hands them pre-signed URLs, even for a
# video whose streams the web clients get ciphered.
PRESIGNED_CLIENTS = {"VISIONOS"}

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
    # What a throttled session gets today (yt-dlp's wiki, Extractors: "This content isn't available").
    "throttled": {"status": "UNPLAYABLE", "reason": "This content isn't available, try again later."},
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
    ad_seconds: int = 0  # a pre-roll ad: the media is refused until it would have played
    sabr_itags: set[int] = field(default_factory=set)  # formats served only over SABR: no file URL


# What YouTube's itags promise, as pytube's own itag table has it.
VIDEO_ITAGS = {137: (1920, 1080), 136: (1280, 720), 134: (640, 360), 160: (256, 144)}


@dataclass
class FakeYouTube:
    server: MediaServer
    videos: dict[str, FakeVideo] = field(default_factory=dict)
    player_calls: Counter[str] = field(default_factory=Counter)  # per video id
    client_calls: Counter[str] = field(default_factory=Counter)  # per player client name
    refused_clients: set[str] = field(default_factory=set)  # answered with HTTP 400, as YouTube does pytube's
    ciphered_clients: set[str] = field(default_factory=set)  # get signatureCipher formats for every video
    player_js: str = BASE_JS
    # Media requests refused with 403 because they came before the video's available time (epoch seconds).
    early_requests: list[float] = field(default_factory=list)
    media_requests: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.routes.append(self.route)

    @property
    def player_js_path(self) -> str:
        # Each player has its own id, as YouTube's do; backends cache a player by its URL.
        player_id = hashlib.sha1(self.player_js.encode()).hexdigest()[:8]
        return f"/s/player/{player_id}/player_ias.vflset/en_US/base.js"

    def route(self, handler: Handler) -> Reply | None:
        path = handler.url_path
        query = parse_qs(handler.query)
        if path == "/watch":
            return self._watch_page(query["v"][0])
        if path == "/youtubei/v1/next":  # yt-dlp's initial data: nothing it needs to resolve
            return Reply(200, b"{}", (("Content-Type", "application/json"),))
        if path == "/youtubei/v1/player":
            # pytube sends the id in the query, pytubefix and yt-dlp in the JSON body.
            body = json.loads(getattr(handler, "body", b"") or b"{}")
            video_id = query.get("videoId", [""])[0] or body["videoId"]
            client = body.get("context", {}).get("client", {}).get("clientName", "")
            self.player_calls[video_id] += 1
            self.client_calls[client] += 1
            if client in self.refused_clients:
                return Reply(400, b'{"error": {"code": 400, "message": "Request contains an invalid argument."}}')
            return self._player(video_id, client)
        if path == self.player_js_path:
            return Reply(200, self.player_js.encode(), (("Content-Type", "text/javascript"),))
        if "available" in query and (early := self._check_available(float(query["available"][0]))):
            return early
        if "sig" in query or "signature" in query:
            return self._check_signed(query)
        return None

    def _check_available(self, available_at: float) -> Reply | None:
        now = time.time()
        self.media_requests.append(now)
        if now < available_at:  # YouTube's 403 to a request made before the ad would have ended
            self.early_requests.append(now)
            return Reply(403, b"not yet")
        return None

    def _video(self, ytid: str) -> FakeVideo | None:
        return self.videos.get(ytid)

    def _watch_page(self, ytid: str) -> Reply:
        video = self._video(ytid)
        status = STATUSES[video.status] if video else STATUSES["unavailable"]
        page = (
            "<html><head><script>var ytInitialPlayerResponse = "
            + json.dumps({"playabilityStatus": status})
            + ";</script><script>var cfg = {\"jsUrl\":\"" + self.player_js_path + "\"};</script></head></html>"
        )
        return Reply(200, page.encode(), (("Content-Type", "text/html"),))

    def _player(self, ytid: str, client: str = "") -> Reply:
        video = self._video(ytid)
        if video is not None and video.player_status != 200:
            return Reply(video.player_status, b'{"error": {"code": 400}}')
        if video is None or video.status != "ok":
            status = STATUSES[video.status] if video else STATUSES["unavailable"]
            body = {"responseContext": RESPONSE_CONTEXT, "playabilityStatus": status}
            if video is not None and video.status == "live":  # today's sign of a live video
                body["videoDetails"] = {"videoId": ytid, "isLive": True, "title": "live", "lengthSeconds": "0"}
            return Reply(200, json.dumps(body).encode())
        if client in PRESIGNED_CLIENTS and client not in self.ciphered_clients:
            video = replace(video, ciphered=False)
        formats = list(self._formats(ytid, video, client in self.ciphered_clients))
        body = {
            "responseContext": RESPONSE_CONTEXT,
            "playabilityStatus": {"status": "OK"},
            "streamingData": {"formats": [], "adaptiveFormats": formats,
                              "serverAbrStreamingUrl": self.server.url("videoplayback/sabr")},
            "videoDetails": {"videoId": ytid, "title": f"synthetic {ytid}", "lengthSeconds": "300",
                             "viewCount": "1", "author": "tests"},
            "playerConfig": {"mediaCommonConfig": {"mediaUstreamerRequestConfig": {
                "videoPlaybackUstreamerConfig": "c3ludGhldGlj"}}},
        }
        if video.ad_seconds:  # a pre-roll ad, in the shape yt-dlp reads to set a format's available_at
            body["adPlacements"] = [{"adPlacementRenderer": {
                "config": {"adPlacementConfig": {"kind": "AD_PLACEMENT_KIND_START"}},
                "renderer": {"instreamVideoAdRenderer": {"playerVars": f"length_seconds={video.ad_seconds}"}}}}]
        return Reply(200, json.dumps(body).encode(), (("Content-Type", "application/json"),))

    def _formats(self, ytid: str, video: FakeVideo, ciphered: bool) -> Iterator[dict]:
        # At least one video-only stream, so "audio only" is really filtered.
        ciphered = ciphered or video.ciphered
        for itag, file in (video.pictures or {137: video.m4a}).items():
            yield self._format(itag, 'video/mp4; codecs="avc1.640028"', VIDEO_ITAGS[itag][1] * 4000, file, video,
                               ciphered)
        if not video.audio:
            return
        yield self._format(139, 'audio/mp4; codecs="mp4a.40.5"', 48_000, video.m4a, video, ciphered)
        yield self._format(140, 'audio/mp4; codecs="mp4a.40.2"', 130_000, video.m4a, video, ciphered)
        yield self._format(250, 'audio/webm; codecs="opus"', 70_000, video.webm, video, ciphered)
        yield self._format(251, 'audio/webm; codecs="opus"', 160_000, video.webm, video, ciphered)

    def _format(self, itag: int, mime: str, bitrate: int, file: str, video: FakeVideo, ciphered: bool) -> dict:
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
        if video.ad_seconds:  # the media server refuses requests made before the ad would have ended
            media += "?" + urlencode({"available": time.time() + video.ad_seconds})
        if ciphered:
            scrambled = f"SIG{itag}abcdefghijklmnopqrstuvwxyz0123456789"
            url = f"{media}{'&' if '?' in media else '?'}" + urlencode({"itag": itag, "n": THROTTLE_N})
            entry["signatureCipher"] = urlencode({"s": scrambled, "sp": "sig", "url": url})
        else:  # pre-signed, as YouTube serves many videos: no deciphering needed
            query = urlencode({"itag": itag, "signature": "presigned"})
            entry["url"] = f"{media}{'&' if '?' in media else '?'}{query}"
        if video.media_url is not None:
            entry.pop("signatureCipher", None)
            entry["url"] = video.media_url
        if itag in video.sabr_itags:  # only the SABR endpoint serves it: no URL of its own
            entry.pop("signatureCipher", None)
            entry.pop("url", None)
        return entry

    def _check_signed(self, query: dict[str, list[str]]) -> Reply | None:
        if "signature" in query:  # pre-signed: served as issued, and only so
            return None if query["signature"] == ["presigned"] else Reply(403, b"bad signature")
        itag = query.get("itag", ["0"])[0]
        expected_sig = decipher_signature(f"SIG{itag}abcdefghijklmnopqrstuvwxyz0123456789")
        expected_n = THROTTLE_N[::-1]
        if query["sig"][0] != expected_sig or query.get("n", [""])[0] != expected_n:
            return Reply(403, b"bad signature")
        return None


def _to_local(url: str, base_url: str) -> str:
    parts = urlsplit(url)
    if parts.hostname and parts.hostname.endswith("youtube.com"):
        return f"{base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
    return url


@contextmanager
def reroute_youtube(server: MediaServer | str) -> Iterator[None]:
    """Send pytube's, pytubefix's and yt-dlp's requests for youtube.com to the local server.

    The one replaced seam: each library's own request function, wrapped to change the host.
    """
    import importlib

    base_url = server if isinstance(server, str) else server.base_url
    undo = []
    for module in ("pytube", "pytubefix"):
        try:
            request = importlib.import_module(f"{module}.request")
        except ImportError:
            continue  # an extra that is not installed
        original = request._execute_request

        def execute(url: str, *args, _original=original, **kwargs):
            return _original(_to_local(url, base_url), *args, **kwargs)

        request._execute_request = execute
        undo.append((request, "_execute_request", original))
    import yt_dlp
    from yt_dlp.networking import Request

    original_urlopen = yt_dlp.YoutubeDL.urlopen

    def urlopen(self, request):
        if isinstance(request, str):
            request = Request(request)
        request.url = _to_local(request.url, base_url)
        return original_urlopen(self, request)

    yt_dlp.YoutubeDL.urlopen = urlopen
    undo.append((yt_dlp.YoutubeDL, "urlopen", original_urlopen))
    try:
        yield
    finally:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)
