"""psfuture: simultaneous German->English translation with the PsFuture read/write policy."""
import argparse
import logging

import torch

__version__ = "0.1.0"

# fairseq checkpoints pickle an argparse.Namespace; torch>=2.6 refuses it unless allow-listed.
torch.serialization.add_safe_globals([argparse.Namespace])


def _quiet_fairseq_logging() -> None:
    # `import fairseq` sets the root logger to DEBUG, flooding every user of the library.
    root = logging.getLogger()
    if root.level == logging.DEBUG:
        root.setLevel(logging.WARNING)
