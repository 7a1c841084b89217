"""The published site in a real browser: headless Chromium loads it from localhost."""

from __future__ import annotations

import fcntl
import functools
import html
import http.server
import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bench import render
from bench.leaderboard import publish
from tests.test_leaderboard import put

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
HOSTILE = "<script>alert(1)</script>"


FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium(tmp: Path, *args: str) -> str:
    flags = [*FLAGS, f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=5000"]
    out = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    return out.stdout


class Devtools:
    """One page of Chromium driven over its DevTools pipe (it reads commands on fd 3 and answers
    on fd 4, NUL-terminated JSON): input goes through the browser as a user's mouse and keys do,
    with no websocket client or browser-driver package."""

    def __init__(self, tmp: Path, url: str, width: int = 1280, height: int = 900) -> None:
        commands, self._to = os.pipe()
        self._from, answers = os.pipe()

        def at_3_and_4() -> None:  # in the child: the pipe ends where Chromium looks for them
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in (commands, answers)]
            os.dup2(high[0], 3)  # dup2 leaves 3 and 4 open across exec; nothing else is
            os.dup2(high[1], 4)

        args = [*FLAGS, f"--user-data-dir={tmp / 'devtools'}", "--remote-debugging-pipe"]
        self.proc = subprocess.Popen(
            [CHROMIUM, *args, f"--window-size={width},{height}", "about:blank"],
            preexec_fn=at_3_and_4,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(commands)
        os.close(answers)
        self._buffer, self._id, self._session = b"", 0, None
        target = self.send("Target.createTarget", url=url)["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def send(self, method: str, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if self._session and not method.startswith("Target."):
            message["sessionId"] = self._session
        os.write(self._to, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                ready, _, _ = select.select([self._from], [], [], 30)
                chunk = os.read(self._from, 1 << 16) if ready else b""
                assert chunk, f"chromium did not answer {method}"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                assert "error" not in reply, reply
                return reply["result"]

    def js(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait(self, expression: str, seconds: float = 20):
        """The first truthy value of ``expression``, polled."""
        end = time.monotonic() + seconds
        while not (value := self.js(expression)) and time.monotonic() < end:
            time.sleep(0.05)
        return value

    def close(self) -> None:
        os.close(self._to)
        os.close(self._from)
        self.proc.kill()
        self.proc.wait()


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
    plots = (site / "emo.html").read_text().count('class="plot"')
    assert 'data-plots-ok="true"' in dom and plots == 2, "primary and curve drawn"
    assert 'data-images-ok="true"' in dom and (site / "emo-cpu-primary.png").exists()
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
    assert 'data-plots-ok="true"' in dom, "the plots draw the hostile name as text"


@pytest.mark.skipif(CHROMIUM is None, reason="`make install` installs Debian's chromium")
def test_plots_hover_tables_filter_and_the_page_fits(runs_dir: Path, tmp_path: Path, served) -> None:
    site, url = served
    for seed, acc in enumerate((0.8, 0.9, 0.85)):
        put(runs_dir / "emo", "emo_1m", seed, acc, git_sha="1111111111aa")
        put(runs_dir / "emo", "mobilenetv2", seed, acc - 0.1)
    variant = {"overrides": ("optim.lr=3e-3",), "git_sha": "2222222222bb", "finished": "2026-01-02T00:00:00"}
    put(runs_dir / "emo", "emo_1m", 0, 0.7, **variant)
    publish("emo", [], tmp_path / "boards")
    text = (site / "emo.html").read_text()
    assert '<script src="plotly.min.js"></script>' in text and len(text) < 100_000, "linked, not inlined"

    page = Devtools(tmp_path, f"{url}/emo.html")
    try:
        assert page.wait("document.body && document.body.dataset.plotsOk") == "true"
        assert page.js("window.innerWidth") == 1280

        def hover(trace: int) -> str:
            """Move the mouse onto the first point of a trace of the first plot; the tooltip's text."""
            page.js("document.querySelector('div.plot').scrollIntoView({block: 'center'})")
            x, y = page.js(
                f"(() => {{ const p = document.querySelectorAll('div.plot')[0].calcdata[{trace}][0];"
                "const gd = document.querySelector('div.plot'), xa = gd._fullLayout.xaxis,"
                "ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();"
                "return [box.left + xa._offset + xa.d2p(p.x), box.top + ya._offset + ya.d2p(p.y)]; })()"
            )
            tooltip = "document.querySelector('.hoverlayer .hovertext')"
            page.send("Input.dispatchMouseEvent", type="mouseMoved", x=1, y=1)  # off the plot first
            assert page.wait(f"!{tooltip}", 5)
            page.send("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y)
            return page.wait(f"{tooltip}?.textContent", 5)

        seed = hover(1)  # the seeds of the standard rows; emo_1m seed 0 comes first
        assert "emo_1m" in seed and "seed 0" in seed and "1111111111" in seed and "standard" in seed
        variant = hover(2)  # the seeds of the variants
        assert "seed 0" in variant and "2222222222" in variant and "optim.lr=0.003" in variant

        page.js("document.querySelector('table.results').previousElementSibling.focus()")
        page.send("Input.insertText", text="mobile")  # typed as a user types: fires input events
        shown = "[...document.querySelector('table.results').tBodies[0].rows].filter(r => !r.hidden)"
        assert page.js(f"{shown}.map(r => r.cells[0].textContent)") == ["mobilenetv2"]
        assert page.js("document.querySelectorAll('input.filter').length") == page.js(
            "document.querySelectorAll('table').length"
        ), "every table has a filter box"
        root = "document.documentElement"
        assert page.js(f"{root}.scrollWidth <= {root}.clientWidth"), "the page fits 1280 px"
    finally:
        page.close()


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
        assert 'data-plots-ok="true"' in dom, "every plot drawn, from the site's own plotly.min.js"
        assert 'data-scrolls-x="false"' in dom, "the page fits 1280 px without a horizontal scroll bar"


def test_figures_carry_each_seed_and_escape_names() -> None:
    """Without a browser: the primary figure has a point per seed with its method, seed, commit and
    overrides, and names from records reach Plotly (which reads labels as HTML) escaped."""
    from bench.plots import figures

    row = {
        "metrics": {"acc": {"mean": 0.85, "std": 0.05}},
        "by_seed": {"0": 0.8, "1": 0.9},
        "commit_by_seed": {"0": "aaaa", "1": "bbbb"},
        "commits": ["aaaa", "bbbb"],
    }
    variant = {
        "method": HOSTILE,
        "overrides": {"optim.lr": 0.003},
        "by_seed": {"2": 0.7},
        "commits": ["cccc"],
    }
    board = {"task": "t", "primary": "acc", "presets": {"cpu": {"m": row}}, "variants": {"cpu": [variant]}}
    (primary,) = figures(board)["cpu"]
    bars, seeds, variants = primary["data"]
    assert seeds["customdata"] == [
        ["m", "0", "aaaa", "none (the standard config)"],
        ["m", "1", "bbbb", "none (the standard config)"],
    ]
    assert seeds["y"] == [0.8, 0.9] and seeds["x"][0] < seeds["x"][1]
    assert variants["customdata"] == [[html.escape(HOSTILE), "2", "cccc", "optim.lr=0.003"]]
    assert HOSTILE not in json.dumps(primary)
