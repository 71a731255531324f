"""Reading a /metrics answer in tests with the Prometheus client's own parser, so a test
asserts values, not how the library orders labels or spells numbers."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample `name` with exactly `labels`, or None when there is none."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return None


def kinds(text: str) -> dict[str, str]:
    """Each metric family's name and type (counter, gauge, histogram)."""
    return {f.name: f.type for f in text_string_to_metric_families(text)}
