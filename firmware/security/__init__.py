"""The security layer shared by OCPP 1.6 and 2.0.1: keys, certificates, TLS, events."""
