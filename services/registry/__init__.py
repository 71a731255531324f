"""The event-sourced model registry: commands and decisions."""
