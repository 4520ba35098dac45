"""Temporal sensitivity: for "first"/"last" questions, does the asked-for end of the evidence win?

Detection (word rules on the question, case-insensitive):

* ``"first"``: the words *first* or *earliest*;
* ``"last"``: *latest*, *most recent(ly)*, or *last* not followed by a period word
  (*night, week, two, few, ...*: "last week" dates an event, it does not order events);
* questions matching both, or neither, are not temporal. Only questions with at least two evidence
  turns count: their earliest and latest evidence turn (in stream order) are the first and last
  matching events.
"""

from __future__ import annotations

import re

import numpy as np

_FIRST = re.compile(r"\b(first|earliest)\b", re.IGNORECASE)
_LAST = re.compile(
    r"\b(latest|most recent(ly)?|last(?!\s+(night|week|weekend|month|year|summer|winter|spring|fall|autumn|"
    r"few|couple|two|three|four|\d+|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b))\b",
    re.IGNORECASE,
)


def temporal_direction(question: str) -> str | None:
    """``"first"``, ``"last"`` or ``None`` (see the module docstring for the rules)."""
    first, last = bool(_FIRST.search(question)), bool(_LAST.search(question))
    if first == last:
        return None
    return "first" if first else "last"


def temporal_summary(records: list[dict], system: str) -> dict:
    """Per direction: n, median rank of the first and of the last event, and how often the asked-for
    end ranks above the other (``asked_end_wins``, percent)."""
    out = {}
    for direction in ("first", "last"):
        rows = [r for r in records if r.get("direction") == direction and len(r["ranks"][system]) >= 2]
        if not rows:
            continue
        first = [r["ranks"][system][0] for r in rows]  # evidence is stored in stream order
        last = [r["ranks"][system][-1] for r in rows]
        asked, other = (first, last) if direction == "first" else (last, first)
        out[direction] = {
            "n": len(rows),
            "median_rank_first_event": float(np.median(first)),
            "median_rank_last_event": float(np.median(last)),
            "asked_end_wins": round(100.0 * float(np.mean([a < b for a, b in zip(asked, other)])), 2),
        }
    return out
