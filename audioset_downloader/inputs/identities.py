"""Identities: what YouTube counts requests against, an address (a proxy) and an account (cookies).

IDENTITIES lists them; each clip goes out through one, for every request it makes
(the backend's metadata requests and ffmpeg's media requests). With IDENTITIES = []
the run has one identity, "default", made of PROXY and COOKIES_FILE. This module
only describes and checks them; the pacing book (pacing/book.py) decides which one a clip gets.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from audioset_downloader.errors import ConfigError, NamedValueError
from audioset_downloader.inputs.cookies import load_cookies

DEFAULT_NAME = "default"
KEYS = ("name", "proxy", "cookies_file")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
SOCKS_SCHEMES = ("socks5", "socks5h")  # reached through fetch/socks.py's relay
PROXY_SCHEMES = ("http", *SOCKS_SCHEMES)


@dataclass(frozen=True)
class Identity:
    name: str
    proxy: str | None = None
    cookies_file: Path | None = None


def check_proxy(value: Any) -> str:
    """A proxy URL for the metadata and the media: http://, or socks5:// (socks5h://) through a relay.

    Not https://: TLS to the proxy itself, which ffmpeg and pytube cannot speak (they would send it plain
    HTTP). Requests to YouTube are TLS inside an http:// proxy's tunnel all the same."""
    if not isinstance(value, str) or not value.strip() or "\x00" in value:
        raise ValueError("must be a proxy URL string")
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise NamedValueError(f"has a port that is not a number: {value!r}") from None
    if parts.scheme == "https":
        raise NamedValueError(f"is an https:// proxy (TLS to the proxy itself), which ffmpeg and pytube cannot "
                              f"speak; give its http:// address (YouTube's requests are TLS inside the tunnel "
                              f"either way) (got {value!r})")
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise NamedValueError('must be an http:// or socks5:// proxy URL, e.g. "http://proxy.lab:3128" or '
                         f'"socks5://user:password@proxy.lab:1080" (got {value!r})')
    return value


def check_identities(value: Any) -> tuple[Identity, ...]:
    """IDENTITIES as checked Identity records; cookie files are read now, so a bad one costs nothing."""
    if not isinstance(value, (list, tuple)):
        raise ValueError('must be a list of dicts, e.g. [{"name": "lab", "proxy": "http://proxy.lab:3128"}], or []')
    identities: list[Identity] = []
    for index, entry in enumerate(value):
        try:
            identities.append(_identity(index, entry))
        except (ValueError, ConfigError) as exc:
            raise NamedValueError(f"entry {index}: {exc}") from None
    names = [identity.name for identity in identities]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise NamedValueError(f"names {repeated[0]!r} twice; give every identity its own name")
    return tuple(identities)


def _identity(index: int, entry: Any) -> Identity:
    if not isinstance(entry, dict):
        raise ValueError(f'must be a dict with keys from {", ".join(KEYS)}')
    for key in entry:
        if key not in KEYS:
            hint = difflib.get_close_matches(str(key), KEYS, n=1)
            raise ValueError(f"unknown key {key!r}; " + (f"did you mean {hint[0]!r}?" if hint else
                                                           f"known keys: {', '.join(KEYS)}"))
    name = entry.get("name", f"identity{index}")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name must be letters, digits, '.', '_' or '-' (got {name!r})")
    proxy = entry.get("proxy")
    if proxy is not None:
        try:
            check_proxy(proxy)
        except ValueError as exc:
            raise ValueError(f"proxy {exc}") from None
    cookies = entry.get("cookies_file")
    if cookies is not None:
        if not isinstance(cookies, str) or not cookies.strip() or "\x00" in cookies:
            raise ValueError(f"cookies_file must be a path string (got {cookies!r})")
        load_cookies(Path(cookies), "cookies_file")
    return Identity(name, proxy, Path(cookies) if cookies is not None else None)
