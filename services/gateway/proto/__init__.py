"""Generated gRPC modules (scripts/gen-proto.sh); edit ledgerflow.proto, not them."""
