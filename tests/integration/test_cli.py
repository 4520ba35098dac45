"""The ``evoembedding`` command line, run in-process."""

from __future__ import annotations

import pytest

from evoembedding_core.cli import DEMO_QUERIES, DEMO_TURNS, build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    return sorted(parser._subparsers._group_actions[0].choices)


def test_every_subcommand_has_help(capsys):
    names = _subcommands()
    assert "demo" in names
    for name in names:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert f"usage: evoembedding {name}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0 and "demo" in capsys.readouterr().out


def test_demo_help_lists_its_options(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "--model" in out and "--top" in out


def test_demo_runs_and_prints_a_ranking_per_query(capsys):
    assert main(["demo", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert f"Read {len(DEMO_TURNS)} turns" in out
    for query in DEMO_QUERIES:
        block = out.split(f"Query: {query}")[1].split("Query:")[0]
        rows = [line for line in block.splitlines() if line.strip()[:1].isdigit()]
        assert len(rows) == 2 and all(any(turn in row for turn in DEMO_TURNS) for row in rows)
