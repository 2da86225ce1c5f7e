"""OCPP 1.6J: Core handlers and configuration keys."""
