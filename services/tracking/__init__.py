"""Tracking commands: validate, decide, append, and wait until projected."""

from ledgerflow.services.tracking.service import TrackingService

__all__ = ["TrackingService"]
