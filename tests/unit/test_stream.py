"""The four stream invariants, on a real encoder (MiniLM) and a tiny causal LM, plus input handling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evoembedding_core.recurrence import StreamState, plan_chunks

TURNS = [
    "Maya: I grew up in Porto, right by the river.",
    "Leo: Porto is lovely.",
    "Maya: I studied in Lisbon and then took a job in Madrid, where summers were far too hot for me.",
    "Leo: Madrid must have been hot.",
    "Maya: Yes.",
    "Leo: Where did you go after that? Somewhere colder, I bet, given how much you complained about the heat.",
    "Maya: Last spring I finally moved again, to Oslo.",
    "Leo: Quite a change!",
    "Maya: I love it there, even the dark winters and the long ferry rides to work.",
    "Leo: Do you still cook Portuguese food?",
    "Maya: Every Sunday: bacalhau for friends.",
    "Leo: Invite me next time.",
    "Maya: Deal. Bring wine.",
    "Leo: Red or white?",
    "Maya: White goes with fish, obviously.",
    "Leo: Noted. See you Sunday then.",
    "Maya: See you! Oh, and bring your sister too.",
    "Leo: She is in Berlin this month, sadly.",
    "Maya: Next time, then.",
    "Leo: Sure.",
]
BACKBONES = ["minilm_model", "tiny_causal_model"]
ATOL = 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:.*were truncated:UserWarning")  # long turns on the tiny LM


@pytest.fixture(params=BACKBONES)
def model(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def unbroken(model, _unbroken_cache):
    """(vectors of TURNS read in one call, that stream), computed once per backbone."""
    if id(model) not in _unbroken_cache:
        stream = model.stream()
        _unbroken_cache[id(model)] = (stream.add(TURNS), stream)
    return _unbroken_cache[id(model)]


@pytest.fixture(scope="module")
def _unbroken_cache():
    return {}


def _add_in_parts(stream, texts, cuts):
    bounds = [0, *cuts, len(texts)]
    return np.vstack([stream.add(texts[a:b]) for a, b in zip(bounds, bounds[1:])])


# ---------------------------------------------------------------------- 1. split-invariance
@pytest.mark.parametrize("cuts", [(5,), (2, 9, 16, 17)])
def test_split_invariance(model, unbroken, cuts):
    whole, _ = unbroken
    parts = _add_in_parts(model.stream(), TURNS, cuts)
    np.testing.assert_allclose(parts, whole, atol=ATOL)


def test_split_invariance_one_segment_per_call(tiny_causal_model):
    whole = tiny_causal_model.stream().add(TURNS)
    stream = tiny_causal_model.stream()
    np.testing.assert_allclose(np.vstack([stream.add(turn) for turn in TURNS]), whole, atol=ATOL)


def test_splits_cover_mid_chunk_points(model):
    lengths = [len(ids) for ids in model.tokenize(TURNS)]
    cfg = model.config
    starts = [
        start for start, _, _ in plan_chunks(StreamState.empty(model), lengths, cfg.chunk_segments, cfg.chunk_tokens)
    ]
    assert len(starts) >= 2, "the test stream must span several chunks"
    assert any(cut not in starts for cut in (1, 5, 17)), "some splits must fall inside a chunk"


@pytest.mark.parametrize("via, cut", [("state_dict", 5), ("file", 17)])
def test_saved_stream_continues_like_an_unbroken_one(model, unbroken, via, cut, tmp_path):
    whole, whole_stream = unbroken
    first = model.stream()
    first.add(TURNS[:cut])
    resumed = model.stream()
    if via == "state_dict":
        resumed.load_state_dict(first.state_dict())
    else:
        first.save(tmp_path / "stream.safetensors")
        resumed.load(tmp_path / "stream.safetensors")
    assert len(resumed) == cut
    np.testing.assert_allclose(resumed.add(TURNS[cut:]), whole[cut:], atol=ATOL)
    query = "Where does Maya live now?"
    np.testing.assert_allclose(resumed.encode_query(query), whole_stream.encode_query(query), atol=ATOL)
    torch.testing.assert_close(resumed.memory, whole_stream.memory, atol=ATOL, rtol=0)


# ---------------------------------------------------------------------- 2. causality
def test_vectors_do_not_depend_on_later_segments(model, unbroken):
    whole, _ = unbroken  # TURNS[:7] followed by TURNS[7:]
    alone = model.stream().add(TURNS[:7])
    other_tail = model.stream().add(TURNS[:7] + ["Completely different words " * 3, "Leo: Still in Porto?"])
    np.testing.assert_allclose(whole[:7], alone, atol=ATOL)
    np.testing.assert_allclose(other_tail[:7], alone, atol=ATOL)


# ---------------------------------------------------------------------- 3. bounded state
def test_memory_never_exceeds_capacity(model):
    cfg = model.config
    short = ["Leo: Sure.", "Maya: Yes.", "Leo: Red or white?", "Maya: Deal."]
    stream = model.stream()
    for _ in range(3):
        stream.add(short)
        assert stream.memory.shape[0] == min(len(stream) * cfg.num_queries, cfg.capacity)
        assert stream.state.chunk_memory.shape[0] <= cfg.capacity
    assert len(stream) * cfg.num_queries > cfg.capacity, "the stream must overflow the queue"


# ---------------------------------------------------------------------- 4. context-sensitivity
@pytest.mark.parametrize("adapted", ["adapted_minilm_model", "adapted_tiny_causal_model"])
def test_same_text_after_different_histories(adapted, request):
    model = request.getfixturevalue(adapted)
    assert any(p.abs().sum() > 0 for n, p in model.named_parameters() if "lora_B" in n)
    text = "Leo: Where do you live these days?"
    history_a, history_b = TURNS[:2], ["Ana: I was born in Rome.", "Ben: I fix bicycles for a living."]

    def after(history):
        stream = model.stream()
        stream.add(history)
        return stream.add([text])[0], stream.encode_query("Where does she live?")

    vec_a, query_a = after(history_a)
    vec_b, query_b = after(history_b)
    vec_a2, query_a2 = after(history_a)
    assert np.abs(vec_a - vec_b).max() > 1e-3
    assert np.abs(query_a - query_b).max() > 1e-3
    np.testing.assert_allclose(vec_a2, vec_a, atol=ATOL)
    np.testing.assert_allclose(query_a2, query_a, atol=ATOL)


# ---------------------------------------------------------------------- input handling
@pytest.mark.parametrize(
    "bad, error, match",
    [
        ("", ValueError, r"texts\[0\] is empty"),
        (["ok", "   "], ValueError, r"texts\[1\] is empty"),
        (["ok", 3], TypeError, r"texts\[1\] must be a string, got int"),
        ([["nested"]], TypeError, r"texts\[0\] must be a string, got list"),
        (None, TypeError, "must be a list of strings"),
        (b"bytes", TypeError, "must be a list of strings"),
        ({"text": "hi"}, TypeError, "must be a list of strings"),
        (["fine", "broken \ud800 text"], ValueError, r"texts\[1\] is not valid Unicode"),
    ],
)
def test_bad_input_is_rejected_and_stream_unchanged(tiny_causal_model, bad, error, match):
    stream = tiny_causal_model.stream()
    stream.add(TURNS[:2])
    before = stream.state_dict()
    with pytest.raises(error, match=match):
        stream.add(bad)
    with pytest.raises((TypeError, ValueError)):
        stream.encode_query(bad if not isinstance(bad, list) else 42)
    after = stream.state_dict()
    assert after["meta"] == before["meta"]
    assert torch.equal(after["memory"], before["memory"])
    assert torch.equal(after["chunk_memory"], before["chunk_memory"])


def test_rejected_call_does_not_disturb_continuation(tiny_causal_model):
    whole = tiny_causal_model.stream().add(TURNS[:6])
    stream = tiny_causal_model.stream()
    first = stream.add(TURNS[:3])
    with pytest.raises(TypeError):
        stream.add([TURNS[3], None])
    np.testing.assert_allclose(np.vstack([first, stream.add(TURNS[3:6])]), whole, atol=ATOL)


def test_empty_list_and_single_string(tiny_causal_model):
    stream = tiny_causal_model.stream()
    assert stream.add([]).shape == (0, tiny_causal_model.output_dim)
    assert len(stream) == 0
    single = stream.add(TURNS[0])
    assert single.shape == (1, tiny_causal_model.output_dim) and single.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(single, axis=1), 1.0, atol=1e-5)
    assert stream.encode_queries([]).shape == (0, tiny_causal_model.output_dim)
    stream.reset()
    assert len(stream) == 0 and stream.memory.shape[0] == 0


def test_state_of_another_model_is_refused(minilm_model, tiny_causal_model, adapted_tiny_causal_model, tmp_path):
    source = tiny_causal_model.stream()
    source.add(TURNS[:3])
    with pytest.raises(ValueError, match="different model"):
        adapted_tiny_causal_model.stream().load_state_dict(source.state_dict())
    source.save(tmp_path / "tiny.safetensors")
    target = minilm_model.stream()
    with pytest.raises(ValueError, match="different model"):
        target.load(tmp_path / "tiny.safetensors")
    assert len(target) == 0


def test_corrupt_state_is_refused(tiny_causal_model, tmp_path):
    stream = tiny_causal_model.stream()
    stream.add(TURNS[:3])
    good = stream.state_dict()
    cfg = tiny_causal_model.config
    too_big = {**good, "memory": torch.zeros(cfg.capacity + cfg.num_queries, tiny_causal_model.hidden_size)}
    with pytest.raises(ValueError, match="capacity"):
        tiny_causal_model.stream().load_state_dict(too_big)
    with pytest.raises(ValueError, match="NaN"):
        tiny_causal_model.stream().load_state_dict({**good, "memory": good["memory"] * float("nan")})
    with pytest.raises(ValueError, match="length"):
        tiny_causal_model.stream().load_state_dict({**good, "meta": {**good["meta"], "length": -1}})
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable stream state"):
        tiny_causal_model.stream().load(tmp_path / "junk.safetensors")


def _write_state(path, state: dict) -> None:
    """Write ``state`` as :meth:`EvoStream.save` would, with a valid checksum (whatever its counters)."""
    import json

    from safetensors.torch import save_file

    from evoembedding_core.stream import _state_digest

    tensors = {"memory": state["memory"].contiguous(), "chunk_memory": state["chunk_memory"].contiguous()}
    meta = json.dumps(state["meta"])
    save_file(tensors, str(path), metadata={"evoembedding_stream": meta, "sha256": _state_digest(tensors, meta)})


def test_out_of_range_counters_are_refused(tiny_causal_model, tmp_path):
    """D12: every counter read from disk is range-checked (10**30 used to load, then len() overflowed)."""
    stream = tiny_causal_model.stream()
    stream.add(TURNS[:3])
    good = stream.state_dict()
    cfg = tiny_causal_model.config
    cases = {
        "length": [10**30, 2**63, -1, 1.5, True],
        "chunk_segments": [cfg.chunk_segments + 1, 10**30],
        "chunk_tokens": [max(cfg.chunk_tokens, cfg.max_segment_tokens) + 1, 10**30],
    }
    for key, values in cases.items():
        for value in values:
            state = {**good, "meta": {**good["meta"], key: value}}
            with pytest.raises(ValueError, match=f"stream state {key} must be"):
                tiny_causal_model.stream().load_state_dict(state)
            _write_state(tmp_path / "s.safetensors", state)
            target = tiny_causal_model.stream()
            with pytest.raises(ValueError, match=f"stream state {key} must be"):
                target.load(tmp_path / "s.safetensors")
            assert len(target) == 0
    with pytest.raises(ValueError, match="must hold floats"):
        tiny_causal_model.stream().load_state_dict({**good, "memory": good["memory"].to(torch.int32)})
    with pytest.raises(ValueError, match="'meta' must be a dict"):
        tiny_causal_model.stream().load_state_dict({**good, "meta": [1]})
    _write_state(tmp_path / "s.safetensors", good)  # the intact state still loads
    assert len(tiny_causal_model.stream().load(tmp_path / "s.safetensors")) == 3
    huge = '{"length": ' + "9" * 5000 + "}"  # more digits than Python converts: still a clear error
    (tmp_path / "h.safetensors").write_bytes(len(huge).to_bytes(8, "little") + huge.encode())
    with pytest.raises(ValueError, match="not a readable stream state"):
        tiny_causal_model.stream().load(tmp_path / "h.safetensors")


def test_fifo_symlink_and_oversized_files_are_refused_fast(tiny_causal_model, tmp_path):
    """D10: a FIFO used to block forever in safe_open; non-regular files are refused before opening."""
    import os
    import threading
    import time

    stream = tiny_causal_model.stream()
    stream.add(TURNS[:3])
    stream.save(tmp_path / "good.safetensors")
    fifo = tmp_path / "fifo.safetensors"
    os.mkfifo(fifo)
    link = tmp_path / "link.safetensors"
    link.symlink_to(tmp_path / "good.safetensors")
    big = tmp_path / "big.safetensors"
    with open(big, "wb") as handle:
        handle.truncate(64 * 2**20)  # sparse: larger than any state of this model
    cases = [(fifo, "a FIFO, not a regular file"), (link, "a symbolic link"), (big, "more than any state")]
    if os.path.exists("/dev/zero"):
        cases.append(("/dev/zero", "a device or socket"))
    for path, message in cases:
        outcome: list = []

        def attempt(path=path, outcome=outcome):
            try:
                tiny_causal_model.stream().load(path)
                outcome.append(None)
            except Exception as exc:  # noqa: BLE001 - recorded and checked below
                outcome.append(exc)

        started = time.monotonic()
        worker = threading.Thread(target=attempt, daemon=True)
        worker.start()
        worker.join(timeout=10)
        if worker.is_alive():  # unblock the reader so the test process can exit, then fail
            with open(fifo, "wb"):
                pass
            pytest.fail(f"loading {path} blocked")
        assert isinstance(outcome[0], ValueError) and message in str(outcome[0]), outcome
        assert time.monotonic() - started < 5
    assert len(tiny_causal_model.stream().load(tmp_path / "good.safetensors")) == 3
