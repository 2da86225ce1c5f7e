"""CAN drivers: EVSE pilot/proximity controller and CHAdeMO vehicle BMS (python-can, cantools)."""
