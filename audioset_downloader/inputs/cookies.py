"""COOKIES_FILE: a browser's cookies (Netscape format), sent with the media requests.

yt-dlp reads the file itself for its metadata requests; for the media, every
backend's URL gets the Cookie header the file holds for it, so ffmpeg's ranged
requests carry the same session.
"""

from __future__ import annotations

import functools
import http.cookiejar
import urllib.request
from pathlib import Path

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.files import input_file_problem


@functools.lru_cache(maxsize=64)
def load_cookies(path: Path, setting: str = "COOKIES_FILE") -> http.cookiejar.MozillaCookieJar:
    """The cookies of a cookies file, expired ones included, or one ConfigError saying what is wrong."""
    if (problem := input_file_problem(path)) is not None:  # a FIFO would block the load
        raise ConfigError(f"{setting} {path} {problem}; fix the path or set it to None")
    jar = http.cookiejar.MozillaCookieJar(str(path))
    try:
        jar.load(ignore_discard=True, ignore_expires=True)
    except (OSError, http.cookiejar.LoadError) as exc:
        raise ConfigError(f"{setting} {path}: cannot read it as a Netscape cookies file ({exc}); "
                          "export the cookies again (e.g. with a 'cookies.txt' browser extension)") from exc
    for cookie in jar:
        if cookie.expires == 0:  # Netscape's "0" is a session cookie; Python would take it as long expired
            cookie.expires = None
            cookie.discard = True
    return jar


def cookie_header(path: Path, url: str) -> str:
    """The Cookie header value the file holds for ``url`` ("" when none)."""
    request = urllib.request.Request(url)
    load_cookies(path).add_cookie_header(request)
    return request.get_header("Cookie", "")
