"""Released EvoEmbedding checkpoints ("EvoRAG" layout): loading and exact reproduction.

A tiny random checkpoint is written in the released layout (same key names, shapes, config.json),
loaded with ``EvoEmbeddingModel.from_pretrained``, and compared with an independent, deliberately
plain oracle of the released algorithm: per-chunk loops, one unpadded row per turn, the wrapped
model called the way the released code calls it (``output_hidden_states=True``, ``hidden_states[-1]``).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen3Config

from evoembedding_core import EvoEmbeddingModel
from evoembedding_core.compat.released import RELEASED_QUERY_PREFIX
from evoembedding_core.recurrence import represent_queries

K, CAPACITY, EMB = 2, 8, 48
TARGETS = ["q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TOLERANCE = 1e-4
TURNS = [
    f"User: {u}\nAssistant: {a}"
    for u, a in [
        ("I grew up in Porto.", "Nice city."),
        ("Then I moved to Oslo last spring, with my cat and far too many books.", "How is Oslo?"),
        ("Cold.", "Dress warmly."),
        ("Where do you live now?", "In Oslo."),
        ("My cat is called Miso and she hates the snow.", "Poor Miso."),
        ("I started a new job in March.", "Congratulations!"),
        ("It is at a bank near the harbour, a long walk from my flat in the old town.", "Sounds busy."),
        ("I might move again.", "Where to?"),
        ("Maybe back to Porto.", "Closer to family."),
        ("Yes.", "Good."),
        ("My sister lives there with her two kids and a dog that barks at every bus.", "Lively!"),
        ("Tell me about Lisbon.", "Hilly and sunny."),
        ("I prefer Porto.", "Fair."),
    ]
]
QUERY = "Where did I grow up?"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matrices: threading only adds overhead (and stalls badly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class ReleasedLayout(nn.Module):
    """The released model's module tree: peft LM, queries (1, K, D), three heads, emb_model."""

    def __init__(self, base_dir, seed: int = 1) -> None:
        super().__init__()
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=TARGETS)
        self.model = get_peft_model(base, lora, adapter_name="memory_generator")
        self.model.add_adapter("retriever", lora)
        hidden = base.config.hidden_size
        self.memory_queries = nn.Parameter(torch.randn(1, K, hidden))
        self.latent_to_mem = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.mem_to_latent = nn.Sequential(nn.Linear(hidden, hidden))
        self.mem_to_emb = nn.Sequential(nn.Linear(hidden, EMB), nn.ReLU(), nn.Linear(EMB, EMB))
        emb_config = Qwen3Config(
            vocab_size=base.config.vocab_size,
            hidden_size=EMB,
            intermediate_size=96,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=12,
            max_position_embeddings=32768,
            rope_theta=1_000_000.0,
            rms_norm_eps=1e-6,
            tie_word_embeddings=True,
        )
        self.emb_model = AutoModelForCausalLM.from_config(emb_config)
        with torch.no_grad():  # adapters must matter: peft starts them as no-ops
            for name, param in self.model.named_parameters():
                if "lora_" in name:
                    param.normal_(0.0, 0.1)
        self.eval()


@pytest.fixture(scope="module")
def released(tmp_path_factory, tiny_causal_dir):
    """(directory, reference module, tokenizer) of a tiny checkpoint in the released layout."""
    root = tmp_path_factory.mktemp("released")
    base_dir = root / "base"
    tokenizer = AutoTokenizer.from_pretrained(tiny_causal_dir)
    tokenizer.add_special_tokens({"eos_token": "<|im_end|>"})  # as in Qwen instruct models: EOS != end-of-text
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(base_dir)
    tokenizer.save_pretrained(base_dir)

    reference = ReleasedLayout(base_dir)
    checkpoint = root / "EvoEmbedding-tiny"
    checkpoint.mkdir()
    state = {n: t.detach().clone().contiguous() for n, t in reference.state_dict().items()}
    state = {n: t for n, t in state.items() if not n.endswith("lm_head.weight")}  # tied, as save_pretrained drops
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for file, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(checkpoint / file))
    weight_map = {k: file for file, keys in shards.items() for k in keys}
    (checkpoint / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    (checkpoint / "config.json").write_text(
        json.dumps(
            {
                "model_type": "EvoRAG",
                "architectures": ["EvoRAGModel"],
                "base_model_name_or_path": str(base_dir),
                "num_latents": K,
                "buffer_capacity": CAPACITY,
                "lora_r": 4,
                "lora_alpha": 8,
            }
        )
    )
    return checkpoint, reference, tokenizer


# ---------------------------------------------------------------------------------------- oracle
def _last_hidden(module: nn.Module, embeds: torch.Tensor) -> torch.Tensor:
    positions = torch.arange(embeds.shape[0]).unsqueeze(0)
    out = module(
        inputs_embeds=embeds.unsqueeze(0),
        attention_mask=torch.ones_like(positions),
        position_ids=positions,
        output_hidden_states=True,
        use_cache=False,
    )
    return out.hidden_states[-1][0]


@torch.no_grad()
def oracle(ref: ReleasedLayout, tokenizer, turns, query, *, chunk_segments=16, chunk_tokens=2048, native=False):
    """The released algorithm, written plainly: returns (history vectors, query vector)."""
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    history = [tokenizer(t)["input_ids"] + [end] for t in turns]
    query_ids = tokenizer(RELEASED_QUERY_PREFIX)["input_ids"] + tokenizer(query)["input_ids"] + [end]
    segments = history + [query_ids]
    if native:
        embed = ref.emb_model.get_input_embeddings()
        vectors = [_last_hidden(ref.emb_model, embed(torch.tensor(ids)))[-1] for ids in segments]
        return _normalise(vectors)
    embed = ref.model.get_input_embeddings()
    queries = ref.memory_queries[0]
    produced = torch.zeros(0, queries.shape[1])  # every latent ever produced, oldest first
    ends = []  # latents produced before each turn
    t = 0
    while t < len(history):
        size, tokens = 0, 0
        for ids in history[t:]:
            if size > 0 and tokens + len(ids) > chunk_tokens:
                break
            tokens += len(ids)
            size += 1
            if size >= chunk_segments:
                break
        buffer = produced[-CAPACITY:]
        parts = [ref.mem_to_latent(buffer)] if len(buffer) else []
        starts, offset = [], len(buffer)
        for ids in history[t : t + size]:
            parts += [embed(torch.tensor(ids)), queries]
            starts.append(offset + len(ids))
            offset += len(ids) + K
        ref.model.set_adapter("memory_generator")
        hidden = _last_hidden(ref.model, torch.cat(parts))
        for start in starts:
            ends.append(len(produced))
            produced = torch.cat([produced, ref.latent_to_mem(hidden[start : start + K])])
        t += size
    ends.append(len(produced))
    ref.model.set_adapter("retriever")
    vectors = []
    for ids, stop in zip(segments, ends):
        memory = produced[max(0, stop - CAPACITY) : stop]
        row = torch.cat([ref.mem_to_latent(memory), embed(torch.tensor(ids))])
        vectors.append(ref.mem_to_emb(ref.latent_to_mem(_last_hidden(ref.model, row)[-1])))
    return _normalise(vectors)


def _normalise(vectors):
    stacked = torch.nn.functional.normalize(torch.stack(vectors).float(), dim=-1).numpy()
    return stacked[:-1], stacked[-1]


def _stream(model, splits, turns=TURNS):
    stream = model.stream()
    bounds = [0, *splits, len(turns)]
    vectors = np.concatenate([stream.add(turns[a:b]) for a, b in zip(bounds, bounds[1:])])
    return stream, vectors


# ---------------------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def small_chunks(released):
    """The released checkpoint with small chunks (many chunks on a short conversation)."""
    return EvoEmbeddingModel.from_pretrained(
        released[0], device="cpu", dtype=torch.float32, chunk_segments=3, chunk_tokens=60
    )


def test_config_maps_the_released_fields(released):
    model = EvoEmbeddingModel.from_pretrained(released[0], device="cpu", dtype=torch.float32)
    cfg = model.config
    assert (cfg.num_queries, cfg.capacity, cfg.lora_r, cfg.lora_alpha) == (K, CAPACITY, 4, 8)
    assert (cfg.evolution, cfg.pooling, cfg.chunk_segments, cfg.chunk_tokens) == ("packed", "last", 16, 2048)
    assert model.output_dim == EMB and model.memory_queries.shape == (K, 64)
    # Default chunking (16 turns / 2048 tokens): one chunk of 13 turns, buffer overflowing (26 > 8 latents).
    history, query = oracle(released[1], released[2], TURNS, QUERY)
    stream, vectors = _stream(model, [])
    assert np.abs(vectors - history).max() <= TOLERANCE
    assert np.abs(stream.encode_query(QUERY) - query).max() <= TOLERANCE


def test_tokens_follow_the_released_conventions(released, small_chunks):
    tokenizer = released[2]
    end = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert end != tokenizer.eos_token_id
    assert small_chunks.tokenize([TURNS[0]]) == [tokenizer(TURNS[0])["input_ids"] + [end]]
    expected = tokenizer(RELEASED_QUERY_PREFIX)["input_ids"] + tokenizer(QUERY)["input_ids"] + [end]
    assert small_chunks.tokenize([QUERY], query=True) == [expected]


@pytest.mark.parametrize("splits", [[], [1, 5, 11], [2, 3, 4, 8]])
def test_stream_matches_the_oracle_over_many_chunks(released, small_chunks, splits):
    history, query = oracle(released[1], released[2], TURNS, QUERY, chunk_segments=3, chunk_tokens=60)
    stream, vectors = _stream(small_chunks, splits)
    delta = max(np.abs(vectors - history).max(), np.abs(stream.encode_query(QUERY) - query).max())
    print(f"max |delta| vs oracle (splits {splits}): {delta:.2e}")
    assert delta <= TOLERANCE
    assert stream.memory.shape[0] == CAPACITY  # 26 latents produced, the last 8 kept
    # Not a trivially equal result: vectors depend on the history.
    assert np.abs(vectors[5] - small_chunks.stream().add(TURNS[5:6])[0]).max() > 1e-3


def test_saved_stream_resumes_inside_an_open_chunk(released, small_chunks, tmp_path):
    history, query = oracle(released[1], released[2], TURNS, QUERY, chunk_segments=3, chunk_tokens=60)
    first = small_chunks.stream()
    head = first.add(TURNS[:4])  # chunks of 3 + the open chunk holds turn 4
    assert 0 < first.state.chunk_segments == len(first.state.chunk_ids)
    first.save(tmp_path / "stream.safetensors")
    resumed = small_chunks.stream().load(tmp_path / "stream.safetensors")
    tail = resumed.add(TURNS[4:])
    assert np.abs(np.concatenate([head, tail]) - history).max() <= TOLERANCE
    assert np.abs(resumed.encode_query(QUERY) - query).max() <= TOLERANCE


def test_native_mode_is_the_bundled_embedding_model(released):
    history, query = oracle(released[1], released[2], TURNS, QUERY, native=True)
    model = EvoEmbeddingModel.from_pretrained(released[0], device="cpu", dtype=torch.float32, native=True)
    stream, vectors = _stream(model, [4])
    assert np.abs(vectors - history).max() <= TOLERANCE
    assert np.abs(stream.encode_query(QUERY) - query).max() <= TOLERANCE
    assert stream.memory.shape[0] == 0


def test_native_queries_over_several_states_use_the_bundled_encoder(released):
    """The batched query path (one query over many streams' states, as a store searches) takes the
    native branch too: the query vector is the bundled encoder's, whatever the states hold."""
    _, query = oracle(released[1], released[2], TURNS, QUERY, native=True)
    model = EvoEmbeddingModel.from_pretrained(released[0], device="cpu", dtype=torch.float32, native=True)
    streams = [_stream(model, [])[0], model.stream(), _stream(model, [2], TURNS[:5])[0]]
    with torch.inference_mode():
        vectors = represent_queries(model, [s.state for s in streams], model.tokenize([QUERY], query=True))
    assert vectors.shape == (3, model.output_dim)
    assert np.abs(vectors.numpy() - query).max() <= TOLERANCE


def test_bad_overrides_and_foreign_configs_are_refused(released, tmp_path):
    with pytest.raises(ValueError, match="override"):
        EvoEmbeddingModel.from_pretrained(released[0], device="cpu", no_such_field=1)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="EvoRAG"):
        EvoEmbeddingModel.from_pretrained(tmp_path, device="cpu")


def test_missing_base_model_names_the_backbone_override(released, tmp_path):
    copy = tmp_path / "moved"
    copy.mkdir()
    for file in released[0].iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    raw = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**raw, "base_model_name_or_path": "/nowhere/Qwen3-4B"}))
    with pytest.raises(ValueError, match="backbone="):
        EvoEmbeddingModel.from_pretrained(copy, device="cpu")
    model = EvoEmbeddingModel.from_pretrained(
        copy, device="cpu", dtype=torch.float32, backbone=raw["base_model_name_or_path"]
    )
    assert model.config.backbone == raw["base_model_name_or_path"]


def test_shard_index_entries_stay_inside_the_model_directory(released, tmp_path):
    """D11: weight_map entries outside the directory (``..``, absolute, via a symlink) are refused before opening."""
    from evoembedding_core.compat.checkpoint import CheckpointReader

    copy = tmp_path / "model"
    copy.mkdir()
    for file in released[0].iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    index = copy / "model.safetensors.index.json"
    weight_map = json.loads(index.read_text())["weight_map"]
    outside = tmp_path / "outside"
    outside.mkdir()
    save_file({"stolen": torch.zeros(2)}, str(outside / "model.safetensors"))
    (copy / "linked.safetensors").symlink_to(outside / "model.safetensors")
    entries = ["../outside/model.safetensors", str(outside / "model.safetensors"), "linked.safetensors", ""]
    for entry in entries:
        index.write_text(json.dumps({"weight_map": {**weight_map, "stolen": entry}}))
        with pytest.raises(ValueError, match=f"weight_map entry {entry!r} points outside the model directory"):
            CheckpointReader(copy)
        with pytest.raises(ValueError, match="points outside"):
            EvoEmbeddingModel.from_pretrained(copy, device="cpu")
    index.write_text(json.dumps({"weight_map": {**weight_map, "ghost.weight": next(iter(weight_map.values()))}}))
    with pytest.raises(ValueError, match="in no shard: \\['ghost.weight'\\]"):
        CheckpointReader(copy)
    for bad in ("{", json.dumps({"weights": {}}), json.dumps({"weight_map": {"a": 1}})):
        index.write_text(bad)
        with pytest.raises(ValueError, match="not valid JSON|no 'weight_map'|must map tensor names"):
            CheckpointReader(copy)
    index.write_text(json.dumps({"weight_map": weight_map}))
    reader = CheckpointReader(copy)
    assert sorted(weight_map) == reader.keys()
    with pytest.raises(ValueError, match="has no tensor 'mem_to_emb.9.weight'"):
        reader.shape("mem_to_emb.9.weight")
    with pytest.raises(ValueError, match="has no tensor"):
        reader.get("nope")


def test_a_hub_cache_snapshot_may_link_to_its_blobs(released, tmp_path):
    """The Hugging Face cache layout (snapshot files linking to ``../../blobs``) still loads."""
    from evoembedding_core.compat.checkpoint import CheckpointReader

    repo = tmp_path / "models--acme--evo"
    snapshot, blobs = repo / "snapshots" / "0123abcd", repo / "blobs"
    snapshot.mkdir(parents=True)
    blobs.mkdir()
    for number, file in enumerate(sorted(released[0].iterdir())):
        (blobs / f"blob{number}").write_bytes(file.read_bytes())
        (snapshot / file.name).symlink_to(f"../../blobs/blob{number}")
    assert CheckpointReader(snapshot).keys() == CheckpointReader(released[0]).keys()
