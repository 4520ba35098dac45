"""PNG plots of evaluation results (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'evoembedding[plots]'") from exc
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _grouped_bars(ax, groups: list[str], series: dict[str, list[float]]) -> None:
    from matplotlib import colormaps

    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    colors = colormaps["tab10" if len(series) <= 10 else "tab20"]  # every series its own colour (up to 20)
    for i, (label, values) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label, color=colors(i % colors.N))
    ax.set_xticks(x, groups)


def plot_categories(result: dict, path: str | Path, metric: str = "R@10") -> Path:
    """Grouped bars: ``metric`` overall and per category, one bar per system."""
    plt = _pyplot()
    systems = result["systems"]
    categories = sorted({c for s in systems.values() for c in s["by_category"]})
    groups = ["overall", *categories]
    series = {
        name: [s["overall"][metric], *(s["by_category"].get(c, {}).get(metric, 0.0) for c in categories)]
        for name, s in systems.items()
    }
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 2) + 2.5, 4))
    _grouped_bars(ax, groups, series)
    ax.set_ylabel(f"{metric} (%)")
    ax.set_title(f"{result['benchmark']}: {metric} by category ({result['questions']} questions)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside: never over the bars
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_temporal(result: dict, path: str | Path) -> Path | None:
    """For "first" and "last" questions: median rank of the first vs the last matching event per system
    (lower is better; a temporally sensitive system ranks the asked-for end higher). ``None`` if no such questions."""
    systems = result["systems"]
    directions = [d for d in ("first", "last") if any(d in s["temporal"] for s in systems.values())]
    if not directions:
        return None
    plt = _pyplot()
    width = max(5.0, 0.5 * len(systems) + 1)
    fig, axes = plt.subplots(1, len(directions), figsize=(width * len(directions), 4.5), squeeze=False)
    for ax, direction in zip(axes[0], directions):
        names = [n for n, s in systems.items() if direction in s["temporal"]]
        stats = [systems[n]["temporal"][direction] for n in names]
        series = {
            "first event": [t["median_rank_first_event"] for t in stats],
            "last event": [t["median_rank_last_event"] for t in stats],
        }
        _grouped_bars(ax, names, series)
        ax.tick_params(axis="x", rotation=30, labelsize=7)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
        ax.set_ylabel("median rank (lower = better)")
        ax.set_title(f'"{direction}" questions (n={stats[0]["n"]})')
        ax.legend(fontsize=8)
    fig.suptitle(f"{result['benchmark']}: temporal sensitivity")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
