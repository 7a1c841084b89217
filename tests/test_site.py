"""The published site in a real browser: headless Chromium loads it from localhost."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from bench import render
from bench.leaderboard import publish
from tests.test_leaderboard import put

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "<script>alert(1)</script>"


def chromium(tmp: Path, *args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=5000",
    ]
    out = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    return out.stdout


@pytest.fixture
def served(tmp_path: Path):
    site = tmp_path / "boards" / "site"
    site.mkdir(parents=True)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield site, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(CHROMIUM is None, reason="`make install` installs Debian's chromium")
def test_site_renders_tables_and_plots_and_escapes(runs_dir: Path, tmp_path: Path, served) -> None:
    site, url = served
    for seed, acc in enumerate((0.8, 0.9, 0.85)):
        put(runs_dir / "emo", "emo_1m", seed, acc)
        put(runs_dir / "emo", "mobilenetv2", seed, acc - 0.1)
    hostile = runs_dir / "emo" / "emo_1m" / "s0-2026-01-01T00:00:01" / "record.json"
    (runs_dir / "emo" / "evil").mkdir()
    (runs_dir / "emo" / "evil" / "record.json").write_text(hostile.read_text().replace("emo_1m", HOSTILE))
    _, skipped = publish("emo", [], tmp_path / "boards")
    assert "evil/record.json" in " ".join(skipped), "a record with a hostile name is refused"

    dom = chromium(tmp_path, "--window-size=1280,900", "--dump-dom", f"{url}/emo.html")
    assert dom.count("<tr>") >= 2 + 1 and "emo_1m" in dom and "mobilenetv2" in dom
    assert 'data-images-ok="true"' in dom and dom.count("<img") == 2
    assert 'data-scrolls-x="false"' in dom, "the page fits 1280 px without a horizontal scroll bar"
    assert dom.index('class="claims"') < dom.index('class="sortable results"') < dom.index("all metrics")
    assert 'href="emo.html"' in chromium(tmp_path, "--dump-dom", f"{url}/index.html")
    shot = tmp_path / "emo.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1200,900", f"{url}/emo.html")
    assert shot.stat().st_size > 10_000

    # Names are validated before publishing; the renderer escapes all the same (defence in depth).
    board = json.loads((tmp_path / "boards" / "emo.json").read_text())
    board["presets"]["cpu"][HOSTILE] = board["presets"]["cpu"].pop("emo_1m")
    board["paper"] = HOSTILE
    (site / "hostile.html").write_text(render.task_page(board, {}))
    dom = chromium(tmp_path, "--dump-dom", f"{url}/hostile.html")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom and HOSTILE not in dom


PUBLISHED = Path(__file__).resolve().parent.parent / "leaderboards" / "site"


@pytest.mark.skipif(CHROMIUM is None, reason="`make install` installs Debian's chromium")
@pytest.mark.parametrize("page", sorted(p.name for p in PUBLISHED.glob("*.html")))
def test_published_pages_render(page: str, tmp_path: Path) -> None:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(PUBLISHED))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}"
    try:
        dom = chromium(tmp_path, "--window-size=1280,900", "--dump-dom", url)
    finally:
        server.shutdown()
    assert "<tbody><tr>" in dom and 'data-images-ok="true"' in dom
    board = PUBLISHED.parent / page.replace(".html", ".json")
    if board.exists():
        assert 'data-scrolls-x="false"' in dom, "the page fits 1280 px without a horizontal scroll bar"
