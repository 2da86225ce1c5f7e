"""Simulated hardware: one coherent plant behind every HAL role (see ``backend``)."""
