-- The firmware update (UpdateFirmware) in progress, at most one. It survives
-- restarts and power cuts: a job left Downloading resumes its download, one
-- left Installing failed, one left Rebooting was installed. state Finished
-- keeps the final FirmwareStatus (result) until the CSMS has received it.
CREATE TABLE firmware_update (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    location         TEXT NOT NULL,
    retrieve_at      TEXT NOT NULL,
    retries          INTEGER NOT NULL,
    retry_interval_s INTEGER NOT NULL,
    file             TEXT NOT NULL,
    state            TEXT NOT NULL,
    result           TEXT,
    updated_at       TEXT NOT NULL
);
