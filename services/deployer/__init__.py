"""The deployer: A/B rollouts of model versions over the deployment aggregate
(`ledgerflow.services.deployments`).

`service` commits deployment commands; `loop` watches live traffic statistics
(`ledgerflow.services.analytics`) and acts on them, by the pure `guardrails` and
`canary` rules; `routing` assigns requests to variants, stickily and by weight.
"""
