"""Firmware Management profile, domain side: the UpdateFirmware job (download
at retrieveDate, install, reboot, surviving power cuts) and the GetDiagnostics
upload, with the status notifications the CSMS follows them by."""
