"""The station's own web page, served by the local API (see ``ui``)."""
