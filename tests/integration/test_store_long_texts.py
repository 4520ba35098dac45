"""``long_texts="split"``: a text over the segment limit is read as consecutive segments, not truncated."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from evoembedding_core.splitting import split_long_texts
from evoembedding_integrations.store import EvoStore, resolve_model

FILLER = " ".join(f"On day {n} we walked along the river and talked about the weather." for n in range(40))
LONG = f"{FILLER} Oh, and before I forget: my locker code at the gym is 4417."
OTHERS = [
    "My sister lives in Bergen and works at the harbour.",
    "We had pizza on Friday at the new place near the station.",
    "The gym opens at six in the morning on weekdays.",
]


@pytest.fixture(scope="module")
def model():
    return resolve_model()


def test_pieces_fit_the_limit_and_cover_the_text(model):
    pieces, owners = split_long_texts(model, ["short", LONG, "also short"])
    assert owners[0] == 0 and owners[-1] == 2 and len(pieces) > 3
    assert " ".join(pieces[1:-1]) == LONG  # cut between words, nothing lost
    assert all(len(ids) <= model.config.max_segment_tokens for ids in model.tokenize(pieces))
    assert split_long_texts(model, OTHERS) == (OTHERS, [0, 1, 2])


def test_a_long_text_is_read_whole_and_its_last_words_count(model):
    store = EvoStore(model, hybrid=False, long_texts="split")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no truncation warning
        ids = store.add([OTHERS[0], LONG, *OTHERS[1:]], stream_id="chat")
    pieces, _ = split_long_texts(model, [LONG])
    reference = model.stream()
    reference.add(OTHERS[:1])
    piece_vectors = reference.add(pieces)
    mean = piece_vectors.mean(axis=0)
    np.testing.assert_allclose(store.vectors([ids[1]])[0], mean / np.linalg.norm(mean), atol=1e-5)
    np.testing.assert_allclose(store.vectors([ids[2]])[0], reference.add(OTHERS[1:2])[0], atol=1e-5)  # reads on
    question = store.encode_query("What is my locker code at the gym?", "chat")
    truncated = model.stream()
    truncated.add(OTHERS[:1])
    with pytest.warns(UserWarning, match="truncated"):
        cut = truncated.add([LONG])[0]  # what reading it as one segment keeps: its first 256 tokens
    assert float(store.vectors([ids[1]])[0] @ question) > float(cut @ question) + 0.02  # its last words count
    assert store.get([ids[1]])[0].text == LONG


def test_the_framework_embedders_read_long_texts_the_same_way(model):
    from evoembedding_integrations.langchain import EvoEmbeddings
    from evoembedding_integrations.llama_index import EvoEmbedding

    for long_texts in ("split", "truncate"):
        store = EvoStore(model, long_texts=long_texts)
        ids = store.add([OTHERS[0], LONG], stream_id="chat")
        langchain = EvoEmbeddings(model, long_texts=long_texts).embed_documents([OTHERS[0], LONG])
        llama = EvoEmbedding(model, long_texts=long_texts).get_text_embedding_batch([OTHERS[0], LONG])
        np.testing.assert_allclose(langchain, store.vectors(ids), atol=1e-5)
        np.testing.assert_allclose(llama, store.vectors(ids), atol=1e-5)


def test_truncation_is_the_default_and_the_option_is_checked(model, tmp_path):
    store = EvoStore(model, path=tmp_path / "s")
    assert store.long_texts == "truncate"
    with pytest.warns(UserWarning, match="truncated"):
        store.add([LONG])
    store.close()
    assert EvoStore.open(tmp_path / "s", model, long_texts="split").long_texts == "split"
    for bad in ("chunk", None):
        with pytest.raises(ValueError, match="long_texts"):
            EvoStore(model, long_texts=bad)
