"""Remote mode: the SDK talking to a `ledgerflow gateway` over HTTP, through a spool."""

from ledgerflow.remote.backend import RemoteBackend

__all__ = ["RemoteBackend"]
