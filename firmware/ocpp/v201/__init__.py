"""OCPP 2.0.1: the front-end (``front_end``) and its device model (``device_model``)."""
