"""The deployment aggregate: its state and fold (`state`), the pure decisions of its
commands (`decide`) and the validation of what they are given (`checks`).

Replicas route from the fold, the projector stores it as the deployments view, and the
deployer's commands decide from it, so all of them import this package; it imports
only `ledgerflow.events`.
"""
