"""The cookies reader: any bytes give cookies or one error naming the file and line, never a traceback."""

from __future__ import annotations

import http.cookiejar
import urllib.request
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audioset_downloader.errors import ConfigError
from audioset_downloader.inputs.cookies import load_cookies, parse_cookies
from tests.conftest import run_script, write_config, write_csv

GOOD = b".youtube.com\tTRUE\t/\tTRUE\t1999999999\tSID\tsecret-sid\n"
WHERE = "COOKIES_FILE cookies.txt"

# A cookie line's shape with any bytes in its fields: closer to what breaks a parser than noise.
cookie_line = st.lists(st.one_of(st.binary(max_size=12),
                                 st.sampled_from([b"TRUE", b"FALSE", b"0", b"", b"1e400", b"nan", b"-1", b"9" * 400])),
                       min_size=5, max_size=8).map(b"\t".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(cookie_line, st.binary(max_size=40)), max_size=6))
@example([b"\xff\xfe# Netscape"])  # not UTF-8
@example([b".youtube.com\tTRUE\t/\tTRUE\tnever\tSID\tx"])  # "cookiejar bug!" in http.cookiejar
@example([b"youtube.com\tTRUE\t/\tTRUE\t0\tSID\tx"])  # TRUE without a leading dot: an assertion there
@example([b".youtube.com\tTRUE\t/\tTRUE\t0\tSID\tx\r\nInjected: 1"])
@example([])
def test_any_bytes_give_cookies_or_one_error_naming_the_file_and_line(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the standard library's own warnings would be printed to the user
        try:
            cookies = parse_cookies(data, WHERE)
        except ConfigError as exc:
            message = str(exc)
            assert message.startswith(WHERE) and "export the cookies again" in message and "\n" not in message
            return
    assert cookies
    request = urllib.request.Request("https://www.youtube.com/watch")
    jar = http.cookiejar.CookieJar()
    for cookie in cookies:
        jar.set_cookie(cookie)
    jar.add_cookie_header(request)
    header = request.get_header("Cookie", "")
    assert not any(ord(char) < 32 for char in header), "a cookie may not carry a control character into a header"


@pytest.mark.parametrize(("content", "said"), [
    (b"", ": holds no cookies (it is empty)"),
    (b"# Netscape HTTP Cookie File\n\n", ": holds no cookies;"),
    (b"# Netscape HTTP Cookie File\n" + GOOD + b".youtube.com\tTRUE\t/\tTRUE\t17e\xe9\tSID\tx\n",
     ":3: byte 0xe9 at column 29 is not UTF-8"),
    (b"# Netscape HTTP Cookie File\n.youtube.com TRUE / TRUE 0 SID x\n",
     ":2: has 1 tab-separated fields; a cookie line has 7"),
    (b"# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\tsoon\tSID\tx\n",
     ":2: the expires field is not a number of seconds (got 'soon')"),
    (b".youtube.com\tyes\t/\tTRUE\t0\tSID\tx\n", ":1: the include_subdomains field must be TRUE or FALSE (got 'yes')"),
    (b".youtube.com\tTRUE\t/\tTRUE\t0\tSID\tx\x00y\n", ":1: the value field holds a control character"),
])
def test_each_broken_file_is_one_error_with_its_line(tmp_path: Path, content: bytes, said: str) -> None:
    path = tmp_path / "cookies.txt"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        load_cookies(path)
    assert str(caught.value).startswith(f"COOKIES_FILE {path}{said}")


def test_browser_exports_read_as_before(tmp_path: Path) -> None:
    path = tmp_path / "cookies.txt"
    path.write_bytes(b"\xef\xbb\xbf# Netscape HTTP Cookie File\r\n# a comment\r\n\r\n" + GOOD.replace(b"\n", b"\r\n")
                     + b"#HttpOnly_.youtube.com\tTRUE\t/\tFALSE\t0\tHSID\thttp-only\r\n"
                     + b"www.example.org\tFALSE\t/a\tFALSE\t\tlonely\t\r\n")
    jar = load_cookies(path)
    cookies = {cookie.name: cookie for cookie in jar}
    assert set(cookies) == {"SID", "HSID", "lonely"}
    assert cookies["SID"].expires == 1999999999 and cookies["SID"].secure
    assert cookies["HSID"].expires is None and cookies["HSID"].has_nonstandard_attr("HttpOnly")  # 0: a session cookie
    request = urllib.request.Request("https://www.youtube.com/watch?v=x")
    jar.add_cookie_header(request)
    assert request.get_header("Cookie") == "SID=secret-sid; HSID=http-only"


@pytest.mark.parametrize("content", [b"\xff\xfe\x00b\x00a\x00d", b".youtube.com\tTRUE\t/\tTRUE\tlater\tSID\tx\n", b""])
@pytest.mark.parametrize("where", ["COOKIES_FILE", "identity"])
def test_a_run_with_a_broken_cookies_file_stops_with_one_line(tmp_path: Path, content: bytes, where: str) -> None:
    cookies = tmp_path / "cookies.txt"
    cookies.write_bytes(content)
    csv_path = write_csv(tmp_path / "eval_segments.csv", ['aaaaaaaaaaa, 0.000, 10.000, "/m/a"'])
    chosen = ({"COOKIES_FILE": str(cookies)} if where == "COOKIES_FILE"
              else {"IDENTITIES": [{"name": "lab", "cookies_file": str(cookies)}]})
    write_config(tmp_path / "cfg.py", CSV_FILE_NAMES=[str(csv_path)], OUTPUT_DIR=str(tmp_path / "out"), **chosen)
    result = run_script("--config", "cfg.py", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert str(cookies) in lines[0] and "export the cookies again" in lines[0]
    assert "Traceback" not in result.stderr and "cookiejar" not in result.stderr
    assert not (tmp_path / "out").exists()  # refused before any work
