"""The deployer: A/B deployments of model versions, their routing, canaries and guardrails.

The pure decision logic lives in small modules (`routing`, `stats`, `guardrails`,
`canary`), the traffic aggregation in `window` (in-process) and `faust_app`
(distributed); none of them touches I/O except `faust_app` and `snapshots`.
"""
