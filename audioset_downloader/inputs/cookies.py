"""COOKIES_FILE: a browser's cookies (Netscape format), sent with the media requests.

yt-dlp reads the file itself for its metadata requests; for the media, every
backend's URL gets the Cookie header the file holds for it, so ffmpeg's ranged
requests carry the same session.

The file is read here rather than by ``http.cookiejar.MozillaCookieJar.load``: that one
dies on bytes that are not UTF-8 with a traceback, and on a malformed field prints its own
"cookiejar bug!" traceback before raising. Like the CSV and settings readers, this one turns
any bytes into cookies or one ConfigError naming the file, the line and what to do.
"""

from __future__ import annotations

import functools
import http.cookiejar
import math
import urllib.request
from pathlib import Path

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.files import input_file_problem

HTTPONLY_PREFIX = "#HttpOnly_"  # curl and yt-dlp mark HttpOnly cookies so; the line is a cookie, not a comment
FIELDS = ("domain", "include_subdomains", "path", "secure", "expires", "name", "value")
_FLAGS = {"TRUE": True, "FALSE": False}
_EXPORT_AGAIN = "export the cookies again in Netscape format (e.g. with a 'cookies.txt' browser extension)"


@functools.lru_cache(maxsize=64)
def load_cookies(path: Path, setting: str = "COOKIES_FILE") -> http.cookiejar.MozillaCookieJar:
    """The cookies of a cookies file, expired ones included, or one ConfigError saying what is wrong."""
    if (problem := input_file_problem(path)) is not None:  # a FIFO would block the load
        raise ConfigError(f"{setting} {path} {problem}; fix the path or set it to None")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{setting} {path}: cannot read it ({exc.strerror}); "
                          "fix the path or set it to None") from None
    jar = http.cookiejar.MozillaCookieJar(str(path))
    for cookie in parse_cookies(data, f"{setting} {path}"):
        jar.set_cookie(cookie)
    return jar


def parse_cookies(data: bytes, where: str) -> list[http.cookiejar.Cookie]:
    """The cookies in a Netscape cookies file's bytes; ``where`` begins each error ("COOKIES_FILE path")."""
    cookies: list[http.cookiejar.Cookie] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8").removesuffix("\r")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{where}:{number}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not "
                              f"UTF-8; {_EXPORT_AGAIN}") from None
        if number == 1:
            line = line.removeprefix("\ufeff")
        try:
            cookie = _cookie(line)
        except ValueError as exc:
            raise ConfigError(f"{where}:{number}: {exc}; {_EXPORT_AGAIN}") from None
        if cookie is not None:
            cookies.append(cookie)
    if not cookies:
        raise ConfigError(f"{where}: holds no cookies{' (it is empty)' if not data.strip() else ''}; {_EXPORT_AGAIN}")
    return cookies


def _cookie(line: str) -> http.cookiejar.Cookie | None:
    """One line's cookie, None for a comment or a blank line, ValueError saying what is wrong."""
    rest = {}
    if line.startswith(HTTPONLY_PREFIX):
        line, rest = line[len(HTTPONLY_PREFIX):], {"HttpOnly": ""}
    elif line.startswith(("#", "$")) or not line.strip():
        return None
    fields = line.split("\t")
    if len(fields) != len(FIELDS):
        raise ValueError(f"has {len(fields)} tab-separated fields; a cookie line has {len(FIELDS)} "
                         f"({', '.join(FIELDS)})")
    domain, subdomains, path, secure, expires, name, value = fields
    # Each field may end up in a Cookie header: a control character would let a file inject headers.
    for field_name, field in zip(FIELDS, fields, strict=True):
        if any(ord(char) < 32 or ord(char) == 127 for char in field):
            raise ValueError(f"the {field_name} field holds a control character")
    if not domain.strip() or " " in domain:
        raise ValueError(f"the domain field is not a host name (got {domain!r})")
    if not path.startswith("/"):
        raise ValueError(f"the path field must start with '/' (got {path!r})")
    flags = {}
    for field_name, field in (("include_subdomains", subdomains), ("secure", secure)):
        if field.upper() not in _FLAGS:
            raise ValueError(f"the {field_name} field must be TRUE or FALSE (got {field!r})")
        flags[field_name] = _FLAGS[field.upper()]
    seconds = _expiry(expires)
    if not name:  # Netscape's way of writing a cookie that has a value and no name
        name, value = value, None
    return http.cookiejar.Cookie(
        version=0, name=name, value=value, port=None, port_specified=False, domain=domain,
        domain_specified=flags["include_subdomains"], domain_initial_dot=domain.startswith("."),
        path=path, path_specified=False, secure=flags["secure"], expires=seconds,
        discard=seconds is None, comment=None, comment_url=None, rest=rest)


def _expiry(text: str) -> int | None:
    """Seconds since the epoch; None for a session cookie (an empty field or Netscape's 0)."""
    if not text.strip():
        return None
    try:
        seconds = float(text)
    except ValueError:
        raise ValueError(f"the expires field is not a number of seconds (got {text[:40]!r})") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"the expires field is not a time (got {text[:40]!r})")
    # A browser exports 0 for a cookie that ends with the session; Python would take it as long expired.
    return int(seconds) or None


def cookie_header(path: Path, url: str) -> str:
    """The Cookie header value the file holds for ``url`` ("" when none)."""
    request = urllib.request.Request(url)
    load_cookies(path).add_cookie_header(request)
    return request.get_header("Cookie", "")
