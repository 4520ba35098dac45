"""evoembedding: evolvable, context-aware embeddings (EvoEmbedding) for streams of text."""

from .client import EvoEmbeddingClient
from .config import EvoEmbeddingConfig
from .model import EvoEmbeddingModel
from .stream import EvoStream

__version__ = "0.1.0"
__all__ = ["EvoEmbeddingClient", "EvoEmbeddingConfig", "EvoEmbeddingModel", "EvoStream", "__version__"]
