"""The gateway: REST and gRPC in front of the services, for SDKs in remote mode and other
clients, and live event subscriptions (gRPC and Server-Sent Events)."""
