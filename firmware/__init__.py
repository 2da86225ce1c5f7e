"""OCPP 1.6J charge point firmware."""

__version__ = "0.1.0"
