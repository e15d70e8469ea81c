"""The library's model entry point (kept where it always was): load_model and the model contract's types.

    model = load_model()                         # the shipped model, float32 on the CPU
    model = load_model("path/to/dir", device="cuda", dtype="bfloat16")
"""
from psfuture.backends.base import (DEFAULT_MODEL_DIR, WORD_START, Answer, ModelBackend, ModelSpec,  # noqa: F401
                                    Query, Vocab, resolve_model_dir)
from psfuture.backends.loader import describe, load, load_model  # noqa: F401

Model = ModelBackend  # the type every backend implements
