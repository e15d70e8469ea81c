"""Model backends: the contract (base), the loader, one adapter per toolkit (fairseq, hf, ct2), and wrappers."""
from psfuture.backends.base import Answer, ModelBackend, ModelSpec, Query, Vocab, resolve_model_dir  # noqa: F401
from psfuture.backends.loader import describe, load, load_model  # noqa: F401
