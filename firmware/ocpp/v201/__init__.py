"""OCPP 2.0.1: the device model (and, later, the 2.0.1 front-end)."""
