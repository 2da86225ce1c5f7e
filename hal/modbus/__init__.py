"""Modbus RTU energy meters: register maps as data (``config/meters``) and the driver."""
