"""The web UI: the built single-page app (ui/ at the repository root, built into
`static/` here) and the routes that serve it next to the REST API (docs/ui.md)."""
