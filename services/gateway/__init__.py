"""The gateway: the REST face of a backend, for SDKs in remote mode and other clients."""
