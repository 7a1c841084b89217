"""A leaderboard as display tables, rendered to Markdown and to escaped HTML pages (with plots drawn
by the vendored plotly.js and a filter box on every table)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from bench.claims import LEVELS, VERDICTS, reading
from bench.plots import PLOTLY_CONFIG, figures

COST_KEYS = ("params", "flops", "throughput", "train_s")


@dataclass
class Section:
    """One preset of one task, as strings ready to print."""

    preset: str
    claims: dict[str, list[list[str]]]
    header: list[str]
    rows: list[list[str]]
    all_header: list[str]
    all_rows: list[list[str]]
    variants: list[list[str]]
    provenance: list[list[str]]


CLAIM_HEADER = ["claim", "verdict", "source", "judged", "value", "bound", "Δ [95% CI]", "n", "power"]
# What each level's claims are, as the boards title them.
LEVEL_TITLES = {
    "paper": "paper: the paper's statement and bound",
    "proxy": "proxy: reduced-scale stand-ins for a paper claim",
    "check": "check: the implementation's sanity",
}
VARIANT_HEADER = ["method", "overrides", "primary", "seeds", "commit"]
PROVENANCE_HEADER = ["method", "git", "packages", "hardware", "date"]


def _fmt(stat: dict | None, digits: int = 4) -> str:
    if not stat or stat.get("mean") is None:
        return ""
    mean, std = stat["mean"], stat["std"]
    if abs(mean) >= 1e4:
        return f"{mean:.4g}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({stat['n']})"


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) else ""


def interval(v: dict) -> str:
    """The mean per-seed difference from the bound and its 95% interval (or why there is none)."""
    if v.get("diff") is None:
        return v.get("reason", "")
    if v.get("lo") is None:
        return f"{v['diff']:+.4g}"
    return f"{v['diff']:+.4g} [{v['lo']:+.4g}, {v['hi']:+.4g}]"


def _name(method: str, row: dict) -> str:
    marks = [m for m, on in (("stale", row["stale"]), ("dirty", row["dirty"])) if on]
    return f"{method} ({', '.join(marks)})" if marks else method


def _source(v: dict) -> str:
    return f"stands for {v['stands_for']}; {v['source']}" if v.get("stands_for") else v["source"]


def power(v: dict) -> str:
    """The smallest effect these seeds detect (paired t, 95%, 80% power), beside the paper's."""
    if v.get("detectable") is None:
        return ""
    expect = f"; paper's effect {v['expect']:.4g}" if v.get("expect") is not None else ""
    return f"detects {v['detectable']:.4g}{expect}"


def claim_rows(verdicts: dict) -> dict[str, list[list[str]]]:
    """The claims grouped by level (paper, proxy, check), levels without claims left out."""
    grouped = {level: [] for level in LEVELS}
    for cid, v in verdicts.items():
        grouped[v["level"]].append(
            [
                f"{cid}: {v['text']}",
                reading(v),
                _source(v),
                v["claim"],
                _num(v.get("value")),
                _num(v.get("bound")),
                interval(v),
                str(v["n"]),
                power(v),
            ]
        )
    return {level: rows for level, rows in grouped.items() if rows}


def sections(board: dict) -> list[Section]:
    out = []
    sign = 1 if board["higher_is_better"] else -1
    primary = board["primary"]
    for preset, table in board["presets"].items():
        shown = [primary, *(k for k in board["headline"] if k != primary)]
        every = sorted({k for row in table.values() for k in row["metrics"]})
        costs = [k for k in COST_KEYS if any(k in row["cost"] for row in table.values())]
        order = sorted(table, key=lambda m: -sign * (table[m]["metrics"].get(primary, {}).get("mean") or 0))
        rows, all_rows, prov = [], [], []
        for m in order:
            row, vs = table[m], table[m].get("vs_best", {})
            reported = "; ".join(f"{k} {v}" for k, v in row["reported"].items())
            rows.append(
                [
                    _name(m, row),
                    *[_fmt(row["metrics"].get(k)) for k in shown],
                    "best" if vs.get("best") == m else _num(vs.get("delta")),
                    _num(vs.get("p")),
                    *[_fmt(row["cost"].get(k), 1) for k in costs],
                    reported,
                ]
            )
            all_rows.append([m, *[_fmt(row["metrics"].get(k)) for k in every]])
            p = row["provenance"]
            hw = p.get("hardware", {})
            prov.append(
                [
                    m,
                    ", ".join(row["commits"]) + (" +dirty" if row["dirty"] else ""),
                    f"torch {p.get('packages', {}).get('torch', '?')}",
                    f"{hw.get('cpu', '?')} x{hw.get('cores', '?')}"
                    + (f", {', '.join(hw['gpus'])}" if hw.get("gpus") else ""),
                    row["date"],
                ]
            )
        header = ["method", *shown, "Δ vs best", "p (paired t)", *costs, "paper"]
        variants = [
            [
                v["method"],
                ", ".join(f"{k}={json.dumps(x)}" for k, x in v["overrides"].items()) or "(code changed)",
                _fmt(v["metrics"].get(primary)),
                ", ".join(map(str, v["seeds"])),
                ", ".join(v["commits"]),
            ]
            for v in board.get("variants", {}).get(preset, [])
        ]
        claims = claim_rows(board["claims"].get(preset, {}))
        out.append(Section(preset, claims, header, rows, ["method", *every], all_rows, variants, prov))
    return out


def counts(board: dict, level: str) -> dict[str, int]:
    """The claims of one level by verdict, over every preset of a board; ``underpowered`` counts
    the inconclusive ones that too few seeds left open."""
    tally = dict.fromkeys((*VERDICTS, "underpowered"), 0)
    for verdicts in board.get("claims", {}).values():
        for v in verdicts.values():
            if v["level"] == level:
                tally[v["verdict"]] += 1
                tally["underpowered"] += v["underpowered"]
    return tally


def _tally(c: dict[str, int]) -> str:
    under = f" ({c['underpowered']} underpowered)" if c["underpowered"] else ""
    return (
        f"{c['holds']} hold, {c['inconclusive']} inconclusive{under}, {c['does not hold']} do not, "
        f"{c['not judged']} not judged"
    )


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows),
    ]


def intro(board: dict) -> str:
    return (
        f"Primary metric: {board['primary']} ({'higher' if board['higher_is_better'] else 'lower'}"
        f" is better); mean ± std (n seeds); Δ and p: paired against the best method on shared "
        f"seeds. Claims, by level (paper: the paper's bound; proxy: a reduced-scale stand-in; check: "
        f"the implementation's sanity): the 95% interval of the per-seed difference from the bound; "
        f"holds / does not hold when it lies on one side, else inconclusive; power: the smallest "
        f"effect these seeds detect (paired t, 80% power), underpowered when it exceeds the paper's "
        f"effect. Paper's numbers: "
        f"{board['reported_note'] or 'none'}."
    )


def markdown(board: dict) -> str:
    lines = [f"# {board['task']}: {board['paper']}", "", intro(board)]
    for s in sections(board):
        lines += ["", f"## preset `{s.preset}`", "", "### claims"]
        for level, rows in s.claims.items():
            lines += ["", f"#### {LEVEL_TITLES[level]}", "", *_md_table(CLAIM_HEADER, rows)]
        lines += ["", "### results", "", *_md_table(s.header, s.rows)]
        lines += _md_figures(board.get("figures", {}).get(s.preset, []))
        lines += ["", "<details><summary>all metrics</summary>", "", *_md_table(s.all_header, s.all_rows)]
        lines += ["", "</details>"]
        if s.variants:
            lines += ["", "### variants (runs with overrides; never a standard row)", ""]
            lines += _md_table(VARIANT_HEADER, s.variants)
        lines += ["", "### provenance", "", *_md_table(PROVENANCE_HEADER, s.provenance)]
    return "\n".join(lines) + "\n"


INDEX_HEADER = [
    "task",
    "paper",
    "best (primary)",
    "paper claims",
    "proxy claims",
    "presets",
    "date",
    "commit",
]


def index_markdown(boards: list[dict]) -> str:
    lines = [
        "# bench leaderboards",
        "",
        "| " + " | ".join(INDEX_HEADER) + " |",
    ]
    lines.append("|---" * len(INDEX_HEADER) + "|")
    lines += ["| " + " | ".join(_index_row(b, f"[{b['task']}]({b['task']}.md)")) + " |" for b in boards]
    return "\n".join(lines) + "\n"


def _index_row(board: dict, link: str) -> list[str]:
    preset = "cpu" if "cpu" in board["presets"] else next(iter(board["presets"]), None)
    table = board["presets"].get(preset, {})
    sign = 1 if board["higher_is_better"] else -1
    ranked = [m for m in table if table[m]["metrics"].get(board["primary"], {}).get("mean") is not None]
    best = max(ranked, key=lambda m: sign * table[m]["metrics"][board["primary"]]["mean"], default=None)
    return [
        link,
        board["paper"],
        f"{best}: {board['primary']} {_fmt(table[best]['metrics'][board['primary']])} ({preset})"
        if best
        else "",
        _tally(counts(board, "paper")),
        _tally(counts(board, "proxy")),
        ", ".join(board["presets"]),
        max((r["date"] for t in board["presets"].values() for r in t.values()), default="")[:10],
        ", ".join(sorted({c for t in board["presets"].values() for r in t.values() for c in r["commits"]})),
    ]


# Sorting by a click on a column header; numbers sort as numbers.
_SORT_JS = """
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, col) => th.addEventListener("click", () => {
    const body = table.tBodies[0], rows = [...body.rows];
    const key = r => { const t = r.cells[col].textContent, n = parseFloat(t); return isNaN(n) ? t : n; };
    const dir = th.dataset.dir = th.dataset.dir === "asc" ? "desc" : "asc";
    rows.sort((a, b) => (key(a) > key(b) ? 1 : key(a) < key(b) ? -1 : 0) * (dir === "asc" ? 1 : -1));
    rows.forEach(r => body.appendChild(r));
  }));
}
"""
# A filter box above every table: the rows stay that hold every word typed (any case). Written by
# hand: a substring match over a few dozen rows needs no table library (DataTables, List.js),
# which would be one more file to vendor and load on every page.
_FILTER_JS = """
for (const table of document.querySelectorAll("table")) {
  const box = document.createElement("input");
  Object.assign(box, {type: "search", className: "filter", placeholder: "filter rows"});
  box.addEventListener("input", () => {
    const words = box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    for (const row of table.tBodies[0].rows) {
      const text = row.textContent.toLowerCase();
      row.hidden = !words.every(w => text.includes(w));
    }
  });
  table.before(box);
}
"""
# Each div.plot holds its Plotly figure as JSON; plotly.min.js, vendored beside the pages, draws it.
_PLOT_JS = """
const plots = [...document.querySelectorAll("div.plot")].map(div => {
  const fig = JSON.parse(div.dataset.figure);
  return window.Plotly ? Plotly.newPlot(div, fig.data, fig.layout, fig.config)
                       : Promise.reject(new Error("plotly.min.js did not load"));
});
Promise.allSettled(plots).then(drawn => (function mark() {
  // tells a test (or a reader's devtools) every plot was drawn and every image loaded, and if the
  // page needs a horizontal scroll bar at this window's width
  const imgs = [...document.images];
  if (!imgs.every(i => i.complete)) return setTimeout(mark, 50);
  document.body.dataset.plotsOk = String(drawn.every(d => d.status === "fulfilled"));
  document.body.dataset.imagesOk = String(imgs.every(i => i.naturalWidth > 0));
  const root = document.documentElement;
  document.body.dataset.scrollsX = String(root.scrollWidth > root.clientWidth);
})());
"""
_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;"
    "margin:0 0 1em}td,th{border:1px solid #ccc;padding:.3em .6em}th{cursor:pointer;background:#eee}"
    ".v{padding:.1em .5em;border-radius:.8em;white-space:nowrap;color:#fff;background:#888}"
    ".v.holds{background:#2a7d3c}.v.does-not-hold{background:#b3261e}.v.inconclusive{background:#b07a00}"
    "details{margin:1em 0}summary{cursor:pointer}"
    "table.claims td:nth-child(n+2):nth-child(-n+4){overflow-wrap:anywhere}"  # claim, source, judged
    "img{max-width:48%;margin:.5em}figure{display:inline-block;max-width:48%;margin:.5em}"
    "figure img{max-width:100%;margin:0}"
    "div.plot{display:inline-block;width:48%;min-width:20em;margin:.5em;vertical-align:top}"
    "input.filter{display:block;margin:1em 0 .3em;width:16em}div.wide{overflow-x:auto;max-width:100%}"
)
PLOTLY_JS = "plotly.min.js"


def _caption(fig: dict) -> str:
    return f"{fig['method']} (seed {fig['seed']})"


def _md_figures(figures: list[dict]) -> list[str]:
    if not figures:
        return []
    return ["", "### figures", "", *(f"![{_caption(f)}](site/{f['file']})" for f in figures)]


def _html_table(header: list[str], rows: list[list[str]], css: str = "sortable") -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    # a wide table scrolls inside its own box, so the page itself stays within the window
    table = f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return f'<div class="wide">{table}</div>'


def _plotly_js() -> str:
    """Plotly's JavaScript, from the installed package (pages load it from the site, offline)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# Files the pages link, written once beside them: the one copy of plotly.js serves every page.
ASSETS = {"site.css": _CSS, "site.js": _SORT_JS + _FILTER_JS + _PLOT_JS, PLOTLY_JS: _plotly_js()}


def page(title: str, body: str) -> str:
    """A page of the site; one that holds plots loads plotly.js first."""
    plotly = f'<script src="{PLOTLY_JS}"></script>' if 'class="plot"' in body else ""
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<link rel="stylesheet" href="site.css"></head><body>{body}{plotly}<script src="site.js">'
        "</script></body></html>"
    )


def _plot(figure: dict) -> str:
    """A div that site.js draws ``figure`` into (the figure as JSON in an escaped attribute)."""
    spec = json.dumps({**figure, "config": PLOTLY_CONFIG}, sort_keys=True, separators=(",", ":"))
    return f'<div class="plot" data-figure="{html.escape(spec)}"></div>'


def task_page(board: dict, images: dict[str, list[str]]) -> str:
    """One task's page: interactive plots, and ``images`` (a preset's PNG file names, relative to
    the page) for a reader without JavaScript."""
    e = html.escape
    plots = figures(board)
    parts = [
        f'<p><a href="index.html">all tasks</a></p><h1>{e(board["task"])}: {e(board["paper"])}</h1>',
        f"<p>{e(intro(board))}</p>",
    ]
    for s in sections(board):
        parts.append(f"<h2>preset {e(s.preset)}</h2><h3>claims</h3>")
        for level, rows in s.claims.items():
            badges = [[_badge(r[1]), *map(e, (r[0], *r[2:]))] for r in rows]
            parts += [f"<h4>{e(LEVEL_TITLES[level])}</h4>", _html_rows(CLAIM_HEADER, badges)]
        parts += [
            "<h3>results</h3>",
            _html_table(s.header, s.rows, "sortable results"),
            f"<details><summary>all metrics</summary>{_html_table(s.all_header, s.all_rows)}</details>",
            *map(_plot, plots.get(s.preset, [])),
            "<noscript>",
            *(f'<img src="{e(name)}" alt="{e(name)}">' for name in images.get(s.preset, [])),
            "</noscript>",
            *(
                f'<figure><img src="{e(f["file"])}" alt="{e(f["file"])}"><figcaption>{e(_caption(f))}'
                "</figcaption></figure>"
                for f in board.get("figures", {}).get(s.preset, [])
            ),
        ]
        if s.variants:
            parts += ["<h3>variants (runs with overrides)</h3>", _html_table(VARIANT_HEADER, s.variants)]
        parts += ["<h3>provenance</h3>", _html_table(PROVENANCE_HEADER, s.provenance)]
    return page(f"bench: {board['task']}", "".join(parts))


def _badge(shown: str) -> str:
    """A verdict as a coloured badge; what follows it (": underpowered ...") in small type below."""
    verdict, _, note = shown.partition(": ")
    badge = f'<span class="v {verdict.replace(" ", "-")}">{html.escape(verdict)}</span>'
    return badge + (f"<br><small>{html.escape(note)}</small>" if note else "")


def _html_rows(header: list[str], rows: list[list[str]]) -> str:
    """A claims table: the verdict cell is a badge (already escaped), then the escaped cells."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in [header[1], header[0], *header[2:]])
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="claims"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def index_page(boards: list[dict]) -> str:
    e = html.escape
    rows = []
    for b in boards:
        cells = _index_row(b, "")
        link = f'<a href="{e(b["task"])}.html">{e(b["task"])}</a>'
        rows.append("<tr>" + f"<td>{link}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells[1:]) + "</tr>")
    head = "".join(f"<th>{e(h)}</th>" for h in INDEX_HEADER)
    return page(
        "bench leaderboards",
        f'<h1>bench leaderboards</h1><table class="sortable"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>",
    )
