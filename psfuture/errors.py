"""One exception tree for psfuture: catch PsFutureError to handle them all."""


class PsFutureError(Exception):
    """Base class of every error psfuture raises on purpose."""


class ConfigError(PsFutureError, ValueError):
    """A setting has a bad value (the message names the setting and the allowed values)."""


class ModelLoadError(PsFutureError):
    """A model directory is missing a file or holds a corrupt one (the message names it and the fix)."""


class SessionError(PsFutureError):
    """A Session was used out of order, e.g. push() after finish()."""
