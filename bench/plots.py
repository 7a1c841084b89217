"""Leaderboard plots, each drawn twice from the same numbers: a matplotlib PNG for the Markdown
boards, and a Plotly figure (plain data and layout dicts) that the site's pages draw in the browser,
with every run's method, seed, commit and overrides on hover."""

from __future__ import annotations

import html
import json
from pathlib import Path

# Plotly's figure options on every page: no link to plot.ly, width follows the page.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
_BLUE, _ORANGE, _GREEN = "#4c72b0", "#dd8452", "#55a868"


def _get(row: dict, dotted: str) -> tuple[float | None, float]:
    kind, _, key = dotted.partition(".")
    stat = row.get(kind, {}).get(key) or {}
    return stat.get("mean"), stat.get("std") or 0.0


def _primary_methods(board: dict, table: dict) -> list[str]:
    return [m for m in table if _get(table[m], f"metrics.{board['primary']}")[0] is not None]


def _curve_points(board: dict, table: dict) -> list[tuple]:
    """(method, x, x std, y, y std) of each method that has both of the task's curve values."""
    x_key, y_key = board["curve"]
    points = [(m, *_get(table[m], x_key), *_get(table[m], y_key)) for m in table]
    return [p for p in points if p[1] is not None and p[3] is not None]


def _series_points(series: dict, table: dict) -> dict[str, list[tuple]]:
    """Per method (but the reference ``over``), the series' (x, y): the metric at x, or the
    reference's metric over the method's where the series is a ratio. Methods without points are
    left out."""

    def mean(method: str, x) -> float | None:
        return _get(table.get(method, {}), f"metrics.{series['metric'].format(x=x)}")[0]

    lines = {}
    for method in table:
        if method == series["over"]:
            continue
        points = []
        for x in series["xs"]:
            y, ref = mean(method, x), mean(series["over"], x) if series["over"] else 1.0
            if y is not None and ref is not None and (series["over"] is None or y > 0):
                points.append((x, ref / y if series["over"] else y))
        if points:
            lines[method] = points
    return lines


def plot_board(board: dict, out: Path) -> dict[str, list[str]]:
    """Per preset: the primary metric per method with std error bars, and the task's curve.
    Returns {preset: [file names]} of the PNGs written into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, list[str]] = {}
    for preset, table in board["presets"].items():
        names = []
        methods = _primary_methods(board, table)
        if methods:
            means, stds = zip(*(_get(table[m], f"metrics.{board['primary']}") for m in methods), strict=True)
            fig, ax = plt.subplots(figsize=(7, 3.5))
            ax.bar(methods, means, yerr=stds, capsize=4, color=_BLUE)
            for i, m in enumerate(methods):  # each seed's value as a point on its bar
                seeds = [v for v in table[m].get("by_seed", {}).values() if v is not None]
                ax.plot([i] * len(seeds), seeds, "o", color=_ORANGE, ms=4, zorder=3)
            ax.set_ylabel(board["primary"])
            ax.set_title(f"{board['task']} ({preset}): mean ± std over seeds, points: seeds")
            ax.tick_params(axis="x", rotation=30)
            names.append(_save(fig, out, f"{board['task']}-{preset}-primary.png"))
        points = _curve_points(board, table) if board.get("curve") else []
        if points:
            fig, ax = plt.subplots(figsize=(7, 3.5))
            for m, x, xs, y, ys in points:
                ax.errorbar(x, y, xerr=xs, yerr=ys, fmt="o", capsize=3)
                ax.annotate(m, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax.set_xlabel(board["curve"][0].partition(".")[2])
            ax.set_ylabel(board["curve"][1].partition(".")[2])
            ax.set_title(f"{board['task']} ({preset})")
            names.append(_save(fig, out, f"{board['task']}-{preset}-curve.png"))
        for series in board.get("series", []):
            if _plot_series(plt, series, table):
                names.append(_save(plt.gcf(), out, f"{board['task']}-{preset}-{series['name']}.png"))
        written[preset] = names
    return written


def _plot_series(plt, series: dict, table: dict) -> bool:
    """Draw one line per method that has the series' metric at some x; False when none has."""
    lines = _series_points(series, table)
    if not lines:
        return False
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for method, points in lines.items():
        ax.plot(*zip(*points, strict=True), marker="o", label=method)
    if series["log_x"]:
        ax.set_xscale("log")
    if series["over"]:
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel(series["xlabel"])
    ax.set_ylabel(series["ylabel"])
    ax.set_title(series["name"])
    ax.legend(fontsize=8)
    return True


def _save(fig, out: Path, name: str) -> str:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


# Plotly reads its labels as a little HTML (<br>, <b>): names from records are escaped, so they show
# as text whatever they hold.
def _t(value) -> str:
    return html.escape(str(value))


def _layout(title: str, x: str, y: str, **more) -> dict:
    return {
        "title": {"text": _t(title), "font": {"size": 13}, "x": 0, "xanchor": "left", "y": 0.98},
        "xaxis": {"title": {"text": _t(x)}, "automargin": True},
        "yaxis": {"title": {"text": _t(y)}, "automargin": True},
        "margin": {"l": 60, "r": 20, "t": 60, "b": 40},
        "height": 380,
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.25},
        **more,
    }


def _seed_points(board: dict, methods: list[str], rows: list[tuple[str, dict, dict]], shift: float) -> dict:
    """One scatter trace of every seed of ``rows`` ((method, row, overrides)), spread around the
    method's position so that equal values stay visible; hover: method, seed, value, commit,
    overrides."""
    x, y, info = [], [], []
    for method, row, overrides in rows:
        seeds = sorted(row.get("by_seed", {}).items(), key=lambda kv: int(kv[0]))
        commits = row.get("commit_by_seed", {})
        shown = [(s, v) for s, v in seeds if v is not None]
        for k, (seed, value) in enumerate(shown):
            x.append(methods.index(method) + shift + 0.06 * (k - (len(shown) - 1) / 2))
            y.append(value)
            commit = commits.get(seed, commits.get(str(seed))) or ", ".join(row.get("commits", []))
            over = ", ".join(f"{key}={json.dumps(val)}" for key, val in overrides.items())
            info.append([_t(method), _t(seed), _t(commit), _t(over or "none (the standard config)")])
    return {
        "type": "scatter",
        "mode": "markers",
        "x": x,
        "y": y,
        "customdata": info,
        "hovertemplate": (
            "<b>%{customdata[0]}</b><br>seed %{customdata[1]}<br>"
            + _t(board["primary"])
            + " %{y:.4g}<br>commit %{customdata[2]}<br>overrides: %{customdata[3]}<extra></extra>"
        ),
    }


def _has_seeds(row: dict) -> bool:
    return any(v is not None for v in row.get("by_seed", {}).values())


def _primary_figure(board: dict, preset: str, table: dict) -> dict | None:
    variants = [v for v in board.get("variants", {}).get(preset, []) if _has_seeds(v)]
    methods = _primary_methods(board, table)
    methods += sorted({v["method"] for v in variants} - set(methods))
    if not methods:
        return None
    stats = [_get(table.get(m, {}), f"metrics.{board['primary']}") for m in methods]
    data = [
        {
            "type": "bar",
            "name": "mean ± std",
            "x": list(range(len(methods))),
            "y": [mean for mean, _ in stats],
            "error_y": {"type": "data", "array": [std for _, std in stats], "visible": True},
            "marker": {"color": _BLUE},
            "customdata": [_t(m) for m in methods],
            "hovertemplate": "<b>%{customdata}</b><br>mean %{y:.4g} ± %{error_y.array:.4g}<extra></extra>",
        },
        {
            **_seed_points(board, methods, [(m, table[m], {}) for m in methods if m in table], 0.0),
            "name": "seeds",
            "marker": {"color": _ORANGE, "size": 8, "line": {"width": 1, "color": "#fff"}},
        },
    ]
    if variants:
        rows = [(v["method"], v, v["overrides"]) for v in variants]
        data.append(
            {
                **_seed_points(board, methods, rows, 0.3),
                "name": "seeds of variants (overrides)",
                "marker": {"color": _GREEN, "size": 8, "symbol": "diamond"},
            }
        )
    ticks = {"tickmode": "array", "tickvals": list(range(len(methods))), "ticktext": [_t(m) for m in methods]}
    layout = _layout(f"{board['task']} ({preset}): mean ± std, points: seeds", "", board["primary"])
    layout["xaxis"].update(ticks)
    return {"data": data, "layout": layout}


def _curve_figure(board: dict, preset: str, points: list[tuple]) -> dict:
    x_name, y_name = (key.partition(".")[2] for key in board["curve"])
    data = [
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": _t(m),
            "x": [x],
            "y": [y],
            "error_x": {"type": "data", "array": [xs], "visible": True},
            "error_y": {"type": "data", "array": [ys], "visible": True},
            "text": [_t(m)],
            "textposition": "top right",
            "cliponaxis": False,
            "hovertemplate": f"<b>{_t(m)}</b><br>{_t(x_name)} %{{x:.4g}} ± {xs:.4g}<br>"
            f"{_t(y_name)} %{{y:.4g}} ± {ys:.4g}<extra></extra>",
        }
        for m, x, xs, y, ys in points
    ]
    return {"data": data, "layout": _layout(f"{board['task']} ({preset})", x_name, y_name, showlegend=False)}


def _series_figure(series: dict, lines: dict[str, list[tuple]]) -> dict:
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": _t(method),
            "x": [x for x, _ in points],
            "y": [y for _, y in points],
            "hovertemplate": f"<b>{_t(method)}</b><br>{_t(series['xlabel'])} %{{x}}<br>"
            f"{_t(series['ylabel'])} %{{y:.4g}}<extra></extra>",
        }
        for method, points in lines.items()
    ]
    layout = _layout(series["name"], series["xlabel"], series["ylabel"], showlegend=True)
    if series["log_x"]:
        layout["xaxis"]["type"] = "log"
    if series["over"]:
        layout["shapes"] = [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": 1,
                "y1": 1,
                "line": {"color": "grey", "width": 1, "dash": "dash"},
            }
        ]
    return {"data": data, "layout": layout}


def figures(board: dict) -> dict[str, list[dict]]:
    """Per preset, the Plotly figures of the page ({"data": [...], "layout": {...}}): the primary
    metric per method with each seed as a point (variants' seeds beside them), the task's curve
    and its series, the same plots as ``plot_board``'s PNGs."""
    out = {}
    for preset, table in board["presets"].items():
        shown = [_primary_figure(board, preset, table)]
        points = _curve_points(board, table) if board.get("curve") else []
        shown.append(_curve_figure(board, preset, points) if points else None)
        for series in board.get("series", []):
            lines = _series_points(series, table)
            shown.append(_series_figure(series, lines) if lines else None)
        out[preset] = [f for f in shown if f]
    return out
