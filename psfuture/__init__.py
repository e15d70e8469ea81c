"""psfuture: simultaneous German->English translation with the PsFuture read/write policy.

Importing the package loads nothing heavy (no torch): the serving protocol and the CLI's argument
parsing stay fast. The library:

    from psfuture.model import load_model       # or psfuture.backends: ModelSpec, load
    from psfuture.policies import make_policy
    from psfuture.session import Session
"""
__version__ = "0.1.0"
