"""System names of an evaluation, without importing torch (the CLI parses them before loading any model).

A base system (:data:`BASE_SYSTEMS`) may run on dated turns (name + ``-dated``), and systems joined
by ``+`` are fused by reciprocal rank (e.g. ``evo-query-no-memory-dated+bm25-dated``).
"""

from __future__ import annotations

BASE_SYSTEMS = ("evo", "evo-query-no-memory", "evo-zero-memory", "minilm", "bm25")
DATED = "-dated"
SYSTEMS = ("evo", "evo-query-no-memory", "evo-zero-memory", "minilm", "minilm-dated", "bm25", "bm25-dated")
"""The default comparison. Any base system (:data:`BASE_SYSTEMS`) also runs on dated turns (name +
``-dated``), and systems joined by ``+`` are fused (e.g. ``evo-query-no-memory-dated+bm25-dated``)."""


def _parts(name: str) -> list[str]:
    return name.split("+")


def _base(part: str) -> str:
    return part[: -len(DATED)] if part.endswith(DATED) else part


def check_system_names(names: list[str] | tuple[str, ...]) -> None:
    """Raise ``ValueError`` naming any unknown or repeated system."""
    unknown = [n for n in names if any(_base(p) not in BASE_SYSTEMS for p in _parts(n))]
    if unknown or not names:
        raise ValueError(
            f"unknown system(s) {unknown}; choose from {', '.join(BASE_SYSTEMS)}, each optionally with "
            f"'{DATED}', joined by '+' to fuse"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"systems listed twice: {list(names)}")


def uses_model(names: list[str] | tuple[str, ...]) -> bool:
    """Whether any of the systems (or a part of a fused one) is our model."""
    return any(p.startswith("evo") for n in names for p in _parts(n))


def relabel(name: str, label: str) -> str:
    """``name`` with each of its parts that names our model starting with ``label`` instead of ``evo``."""
    return "+".join(label + p[3:] if p.startswith("evo") else p for p in _parts(name))
