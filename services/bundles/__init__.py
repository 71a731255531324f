"""Deployable bundles: build requests, conversion on Ray, and the alias policy."""
