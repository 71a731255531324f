"""The deployer: A/B rollouts of model versions as an event-sourced deployment aggregate.

Pure decisions: `decide` and `checks` (commands), `routing`, `stats`, `guardrails` and
`canary`; the traffic aggregation in `window` (in-process, `traffic`/`live`) and
`faust_app` (distributed); `service` commits, `loop` watches live traffic and acts.
"""
