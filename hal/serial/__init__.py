"""Drivers for devices on serial ports: RFID readers (PN532, RDM6300, UID-per-line)."""
