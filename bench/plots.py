"""Leaderboard plots (matplotlib, written as PNG files for the static site)."""

from __future__ import annotations

from pathlib import Path


def _get(row: dict, dotted: str) -> tuple[float | None, float]:
    kind, _, key = dotted.partition(".")
    stat = row.get(kind, {}).get(key) or {}
    return stat.get("mean"), stat.get("std") or 0.0


def plot_board(board: dict, out: Path) -> dict[str, list[str]]:
    """Per preset: the primary metric per method with std error bars, and the task's curve.
    Returns {preset: [file names]} of the PNGs written into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, list[str]] = {}
    for preset, table in board["presets"].items():
        names = []
        methods = [m for m in table if _get(table[m], f"metrics.{board['primary']}")[0] is not None]
        if methods:
            means, stds = zip(*(_get(table[m], f"metrics.{board['primary']}") for m in methods), strict=True)
            fig, ax = plt.subplots(figsize=(7, 3.5))
            ax.bar(methods, means, yerr=stds, capsize=4, color="#4c72b0")
            for i, m in enumerate(methods):  # each seed's value as a point on its bar
                seeds = [v for v in table[m].get("by_seed", {}).values() if v is not None]
                ax.plot([i] * len(seeds), seeds, "o", color="#dd8452", ms=4, zorder=3)
            ax.set_ylabel(board["primary"])
            ax.set_title(f"{board['task']} ({preset}): mean ± std over seeds, points: seeds")
            ax.tick_params(axis="x", rotation=30)
            names.append(_save(fig, out, f"{board['task']}-{preset}-primary.png"))
        if board.get("curve"):
            x_key, y_key = board["curve"]
            points = [(m, *_get(table[m], x_key), *_get(table[m], y_key)) for m in table]
            points = [p for p in points if p[1] is not None and p[3] is not None]
            if points:
                fig, ax = plt.subplots(figsize=(7, 3.5))
                for m, x, xs, y, ys in points:
                    ax.errorbar(x, y, xerr=xs, yerr=ys, fmt="o", capsize=3)
                    ax.annotate(m, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
                ax.set_xlabel(x_key.partition(".")[2])
                ax.set_ylabel(y_key.partition(".")[2])
                ax.set_title(f"{board['task']} ({preset})")
                names.append(_save(fig, out, f"{board['task']}-{preset}-curve.png"))
        for series in board.get("series", []):
            if _plot_series(plt, series, table):
                names.append(_save(plt.gcf(), out, f"{board['task']}-{preset}-{series['name']}.png"))
        written[preset] = names
    return written


def _plot_series(plt, series: dict, table: dict) -> bool:
    """Draw one line per method that has the series' metric at some x; False when none has."""

    def mean(method: str, x) -> float | None:
        return _get(table.get(method, {}), f"metrics.{series['metric'].format(x=x)}")[0]

    fig, ax = plt.subplots(figsize=(7, 3.5))
    drawn = False
    for method in table:
        if method == series["over"]:
            continue
        points = []
        for x in series["xs"]:
            y, ref = mean(method, x), mean(series["over"], x) if series["over"] else 1.0
            if y is not None and ref is not None and (series["over"] is None or y > 0):
                points.append((x, ref / y if series["over"] else y))
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=method)
            drawn = True
    if not drawn:
        plt.close(fig)
        return False
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
