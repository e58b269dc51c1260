"""The feeds the engine scenarios fetch, as files for Bench.start_nginx: the fixtures' ~1.5 KB
small.json and ~67 KB amazingexpo2020.json, each served two ways: as is (the same document on
every fetch, which fetchd stores once per task), and under /nonce/, where nginx answers each
request with one of 16^digits copies picked at random, each with its own nonce as the first
record's "id" (a new document on almost every fetch: see bench/nginx/nginx.conf)."""

from __future__ import annotations

import re

from harness import REPO_DIR, BenchError

FIXTURES_DIR = REPO_DIR.parent / "shared" / "fixtures"
FEEDS = {"small": "small.json", "large": "amazingexpo2020.json"}
NONCE_DIGITS, QUICK_NONCE_DIGITS = 3, 2  # 4096 copies (256 with --quick)


def _with_nonce(body: bytes, nonce: str) -> bytes:
    out, n = re.subn(rb'"id": "[^"]*"', f'"id": "{nonce}"'.encode(), body, count=1)
    if n != 1:
        raise BenchError("feed without an \"id\" field to put the nonce in")
    return out


def feed_files(digits: int, sizes=tuple(FEEDS)) -> dict[str, bytes]:
    """{path under the document root: content}: <size>/feed.json, and the 16^digits copies
    copies/<size>/<hex>.json that nginx serves as /nonce/<size>/feed.json."""
    files = {}
    for size in sizes:
        try:
            body = (FIXTURES_DIR / FEEDS[size]).read_bytes()
        except OSError as e:
            raise BenchError(f"feed file: {e}") from e
        files[f"{size}/feed.json"] = body
        for i in range(16**digits):
            name = f"{i:0{digits}x}"
            files[f"copies/{size}/{name}.json"] = _with_nonce(body, f"{i:032x}")
    return files


def start_feeds(bench, name: str = "nginx-feeds", sizes=tuple(FEEDS)):
    """nginx serving the feeds (Bench.start_nginx)."""
    digits = QUICK_NONCE_DIGITS if bench.quick else NONCE_DIGITS
    return bench.start_nginx(feed_files(digits, sizes), name=name, nonce_digits=digits)


def feed_path(size: str, changing: bool) -> str:
    """The URL path of a feed: size "small" or "large", the same document or a new one each
    time."""
    return f"/{'nonce/' if changing else ''}{size}/feed.json"


def feed_size(size: str) -> int:
    return (FIXTURES_DIR / FEEDS[size]).stat().st_size
