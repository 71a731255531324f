"""The gateway: REST and gRPC in front of the services, and live event subscriptions."""
