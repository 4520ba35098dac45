"""A plain store loads no model code: importing the store package, and using a plain store end to
end, imports neither torch nor peft nor the EvoEmbedding model (each checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

MODEL_CODE = ("torch", "peft", "transformers", "evoembedding_core.model")


def _loaded_after(code: str) -> list[str]:
    script = textwrap.dedent(code) + textwrap.dedent(f"""
        import json, sys
        print(json.dumps(sorted(m for m in {MODEL_CODE!r} if m in sys.modules)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_store_imports_no_model_code():
    assert _loaded_after("import evoembedding_integrations.store") == []
    assert (
        _loaded_after("from evoembedding_integrations.store import EvoStore, CorruptStoreError, compile_filter") == []
    )


def test_a_plain_store_works_without_model_code(tmp_path):
    code = f"""
        import numpy as np
        from evoembedding_integrations.store import EvoStore

        def embed(texts):
            return np.stack([np.random.default_rng(len(t)).normal(size=8) for t in texts])

        store = EvoStore(embeddings=embed, hybrid=True)
        store.add(["a cat", "the dog barks"], metadatas=[{{"n": 1}}, {{"n": 2}}])
        assert store.search("dog", k=1, filter={{"n": {{"$gte": 2}}}})[0].text == "the dog barks"
        store.save({str(tmp_path / "plain")!r})
        assert len(EvoStore.load({str(tmp_path / "plain")!r}, embeddings=embed)) == 2
    """
    assert _loaded_after(code) == []
