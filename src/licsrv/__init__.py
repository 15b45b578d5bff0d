"""licsrv: a self-hosted license and activation server."""

__version__ = "0.1.0"
