"""The deployment aggregate: its state and fold (`state`), its commands as typed
messages with their REST routes (`commands`), their pure decisions (`decide`) and the
validation of what they are given (`checks`).

Replicas route from the fold, the projector stores it as the deployments view, and the
deployer's commands decide from it, so all of them import this package; it imports
only `ledgerflow.events`.
"""
