"""OCPP: connection, RPC, registration and the version-specific handlers."""
