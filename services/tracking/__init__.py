"""Tracking commands: validate and decide (`decide`, light enough for a client to import),
then append and wait until projected (`service.TrackingService`)."""
