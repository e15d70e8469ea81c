"""fairseq tasks registered by `--user-dir psfuture` (fairseq imports every module here)."""
from . import p2f_loss, prefix_to_full  # noqa: F401
