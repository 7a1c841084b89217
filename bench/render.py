"""A leaderboard as display tables, rendered to Markdown and to escaped HTML pages."""

from __future__ import annotations

import html
from dataclasses import dataclass

COST_KEYS = ("params", "flops", "throughput", "train_s")


@dataclass
class Section:
    """One preset of one task, as strings ready to print."""

    preset: str
    header: list[str]
    rows: list[list[str]]
    claims: list[list[str]]
    provenance: list[list[str]]


def _fmt(stat: dict | None, digits: int = 4) -> str:
    if not stat or stat.get("mean") is None:
        return ""
    mean, std = stat["mean"], stat["std"]
    if abs(mean) >= 1e4:
        return f"{mean:.4g}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({stat['n']})"


def _num(v) -> str:
    return f"{v:.4g}" if isinstance(v, int | float) and not isinstance(v, bool) else ""


def _verdict(holds) -> str:
    return {True: "holds", False: "does not hold", None: "not judged"}[holds]


def sections(board: dict) -> list[Section]:
    out = []
    sign = 1 if board["higher_is_better"] else -1
    for preset, table in board["presets"].items():
        metrics = sorted({k for row in table.values() for k in row["metrics"]})
        costs = [k for k in COST_KEYS if any(k in row["cost"] for row in table.values())]
        reported = sorted({k for row in table.values() for k in row["reported"]})
        header = ["method", *metrics, "Δ vs best", "p (paired t)", *costs, *[f"paper {k}" for k in reported]]
        order = sorted(
            table, key=lambda m: -sign * (table[m]["metrics"].get(board["primary"], {}).get("mean") or 0)
        )
        rows, prov = [], []
        for m in order:
            row, vs = table[m], table[m].get("vs_best", {})
            rows.append(
                [
                    f"{m} (stale)" if row["stale"] else m,
                    *[_fmt(row["metrics"].get(k)) for k in metrics],
                    "best" if vs.get("best") == m else _num(vs.get("delta")),
                    _num(vs.get("p")),
                    *[_fmt(row["cost"].get(k), 1) for k in costs],
                    *[_num(row["reported"].get(k)) for k in reported],
                ]
            )
            p = row["provenance"]
            hw = p.get("hardware", {})
            prov.append(
                [
                    m,
                    (p.get("git_sha") or "?")[:10] + ("+dirty" if p.get("git_dirty") else ""),
                    f"torch {p.get('packages', {}).get('torch', '?')}",
                    f"{hw.get('cpu', '?')} x{hw.get('cores', '?')}"
                    + (f", {', '.join(hw['gpus'])}" if hw.get("gpus") else ""),
                    row["date"],
                ]
            )
        claims = []
        for cid, v in board["claims"][preset].items():
            if "per_method" in v:
                value = "; ".join(f"{m}: {_num(c['value'])}" for m, c in v["per_method"].items())
                bound = "; ".join(sorted({_num(c["bound"]) for c in v["per_method"].values()}))
            else:
                value, bound = _num(v.get("value")), _num(v.get("bound"))
            claims.append([f"{cid}: {v['text']}", _verdict(v["holds"]), value, bound])
        out.append(Section(preset, header, rows, claims, prov))
    return out


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def intro(board: dict) -> str:
    return (
        f"Primary metric: {board['primary']} ({'higher' if board['higher_is_better'] else 'lower'}"
        f" is better); mean ± std (n seeds); Δ and p: paired against the best method on shared "
        f"seeds. Paper's numbers: {board['reported_note'] or 'none'}."
    )


def markdown(board: dict) -> str:
    lines = [f"# {board['task']}: {board['paper']}", "", intro(board)]
    for s in sections(board):
        lines += [
            "",
            f"## preset `{s.preset}`",
            "",
            *_md_table(s.header, s.rows),
            *_md_figures(board.get("figures", {}).get(s.preset, [])),
            "",
            "### claims",
            "",
            *_md_table(["claim", "verdict", "value", "bound"], s.claims),
            "",
            "### provenance",
            "",
            *_md_table(["method", "git", "packages", "hardware", "date"], s.provenance),
        ]
    return "\n".join(lines) + "\n"


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
(function mark() {  // data-images-ok tells a test (or a reader's devtools) every plot loaded
  const imgs = [...document.images];
  if (!imgs.every(i => i.complete)) return setTimeout(mark, 50);
  document.body.dataset.imagesOk = String(imgs.every(i => i.naturalWidth > 0));
})();
"""
_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;"
    "margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em}th{cursor:pointer;background:#eee}"
    "img{max-width:48%;margin:.5em}figure{display:inline-block;max-width:48%;margin:.5em}"
    "figure img{max-width:100%;margin:0}"
)


def _caption(fig: dict) -> str:
    return f"{fig['method']} (seed {fig['seed']})"


def _md_figures(figures: list[dict]) -> list[str]:
    if not figures:
        return []
    return ["", "### figures", "", *(f"![{_caption(f)}](site/{f['file']})" for f in figures)]


def _html_table(header: list[str], rows: list[list[str]], sortable: bool = True) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<table class="{"sortable" if sortable else ""}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


# Files every page links, written once beside the pages.
ASSETS = {"site.css": _CSS, "site.js": _SORT_JS}


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<link rel="stylesheet" href="site.css"></head><body>{body}<script src="site.js"></script>'
        "</body></html>"
    )


def task_page(board: dict, images: dict[str, list[str]]) -> str:
    """One task's page; ``images`` maps a preset to its plot file names (relative to the page)."""
    e = html.escape
    parts = [
        f'<p><a href="index.html">all tasks</a></p><h1>{e(board["task"])}: {e(board["paper"])}</h1>',
        f"<p>{e(intro(board))}</p>",
    ]
    for s in sections(board):
        parts += [
            f"<h2>preset {e(s.preset)}</h2>",
            _html_table(s.header, s.rows),
            *(f'<img src="{e(name)}" alt="{e(name)}">' for name in images.get(s.preset, [])),
            *(
                f'<figure><img src="{e(f["file"])}" alt="{e(f["file"])}"><figcaption>{e(_caption(f))}'
                "</figcaption></figure>"
                for f in board.get("figures", {}).get(s.preset, [])
            ),
            "<h3>claims</h3>",
            _html_table(["claim", "verdict", "value", "bound"], s.claims),
            "<h3>provenance</h3>",
            _html_table(["method", "git", "packages", "hardware", "date"], s.provenance),
        ]
    return page(f"bench: {board['task']}", "".join(parts))


def index_page(boards: list[dict]) -> str:
    e = html.escape
    rows = "".join(
        f'<tr><td><a href="{e(b["task"])}.html">{e(b["task"])}</a></td><td>{e(b["paper"])}</td>'
        f"<td>{e(', '.join(b['presets']))}</td></tr>"
        for b in boards
    )
    return page(
        "bench leaderboards",
        '<h1>bench leaderboards</h1><table class="sortable"><thead><tr>'
        f"<th>task</th><th>paper</th><th>presets</th></tr></thead><tbody>{rows}</tbody></table>",
    )
