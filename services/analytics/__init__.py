"""Live traffic analytics: what deployments' variants served, measured.

Replicas record what they served (`traffic.TrafficRecorder`); the fold of those
`inference.*` and `feedback.*` events (`window`) into per-variant windows (`series`, with
the latency `histogram`) runs in process (`traffic.TrafficFollower`) or on Kafka as a
Faust worker (`faust_app`, over `table_fold`, publishing `snapshots` to Redis); `live`
reads the statistics (`aggregates`) wherever they are computed; `stats`, `significance`
and `distributions` turn them into an A/B analysis. Nothing here decides what a deployment does: the
deployer (`ledgerflow.services.deployer`) reads these numbers and acts.
"""
