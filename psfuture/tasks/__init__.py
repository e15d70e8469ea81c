"""fairseq tasks registered by `--user-dir psfuture` (fairseq imports every module here)."""
import argparse

import torch

# fairseq checkpoints pickle an argparse.Namespace; torch>=2.6 refuses it unless allow-listed. fairseq-train with
# --user-dir psfuture imports this package before it resumes from or fine-tunes a checkpoint (the inference side
# allow-lists it in psfuture/backends/fairseq.py; `import psfuture` itself stays free of torch).
torch.serialization.add_safe_globals([argparse.Namespace])

from . import p2f_loss, prefix_to_full  # noqa: E402,F401
