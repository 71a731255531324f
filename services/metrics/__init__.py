"""Prometheus metrics: how every long-running process exposes its registry.

Each process family defines its metrics in one module beside it
(`services/gateway/metrics.py`, `services/projector/metrics.py`, `services/serving/metrics.py`,
`services/deployer/metrics.py`, `services/webhooks/metrics.py`,
`services/analytics/metrics.py`), each in a `CollectorRegistry` it is given, so one process
can host several apps (tests do) without their series mixing. `exposition` serves a
registry: as a Starlette route, or as a small HTTP endpoint for processes without one.
"""
