"""Write evaluation results: JSON (everything, including every evidence rank), a markdown table, PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

from .metrics import NDCG_K, RECALL_KS, SESSION_KS

MAIN_COLUMNS = [f"R@{k}" for k in RECALL_KS] + [f"NDCG@{NDCG_K}"]
SESSION_COLUMNS = [f"S-R@{k}" for k in SESSION_KS]


def _fmt(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "–"


def markdown_report(result: dict) -> str:
    """Tables: overall metrics (+ R@10 per category), per-category R@10 / NDCG@10, temporal sensitivity."""
    systems = result["systems"]
    categories = sorted({c for s in systems.values() for c in s["by_category"]})
    with_sessions = any("S-R@5" in s["overall"] for s in systems.values())
    lines = [
        f"### {result['benchmark']}: {result['questions']} questions, {result['candidates']} candidate turns, "
        f"{result['conversations']} stream(s) (scores in %)",
        "",
    ]
    head = ["system", *MAIN_COLUMNS, *(SESSION_COLUMNS if with_sessions else []), *(f"R@10 {c}" for c in categories)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in systems.items():
        cells = [s["overall"].get(c) for c in MAIN_COLUMNS + (SESSION_COLUMNS if with_sessions else [])]
        cells += [s["by_category"].get(c, {}).get("R@10") for c in categories]
        lines.append("| " + " | ".join([name, *map(_fmt, cells)]) + " |")
    lines += ["", "Per category (n; R@10 / NDCG@10):", ""]
    head = ["system", *(f"{c} (n={next(iter(systems.values()))['by_category'][c]['n']})" for c in categories)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in systems.items():
        cells = [f"{_fmt(s['by_category'][c]['R@10'])} / {_fmt(s['by_category'][c]['NDCG@10'])}" for c in categories]
        lines.append("| " + " | ".join([name, *cells]) + " |")
    temporal = [
        (d, name, s["temporal"][d]) for name, s in systems.items() for d in ("first", "last") if d in s["temporal"]
    ]
    if temporal:
        lines += [
            "",
            "Temporal sensitivity (questions asking for the first / last event, >= 2 evidence turns): median rank of "
            "the first and last matching event, and % of questions where the asked-for end ranks higher:",
            "",
            "| system | question | n | rank first event | rank last event | asked end wins |",
            "|---|---|---|---|---|---|",
        ]
        for direction, name, t in temporal:
            lines.append(
                f"| {name} | {direction} | {t['n']} | {t['median_rank_first_event']:.0f} | "
                f"{t['median_rank_last_event']:.0f} | {t['asked_end_wins']:.1f} |"
            )
    seconds = ", ".join(f"{name} {s['seconds']:.0f} s" for name, s in systems.items())
    lines += ["", f"Time per system: {seconds}."]
    return "\n".join(lines) + "\n"


def write_report(result: dict, out_dir: str | Path, *, plots: bool = True) -> list[Path]:
    """Write ``results.json``, ``results.md`` and (when matplotlib is installed) the PNG plots."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "results.json", out / "results.md"]
    paths[0].write_text(json.dumps(result, indent=1, ensure_ascii=False))
    paths[1].write_text(markdown_report(result))
    if plots:
        from .plots import plot_categories, plot_temporal

        paths.append(plot_categories(result, out / "categories.png"))
        temporal = plot_temporal(result, out / "temporal.png")
        if temporal:
            paths.append(temporal)
    return paths
