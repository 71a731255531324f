"""The deployer: A/B rollouts of model versions as an event-sourced deployment aggregate."""
