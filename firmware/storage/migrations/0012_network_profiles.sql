-- OCPP 2.0.1 network connection profiles (firmware/ocpp/v201/network.py): what the
-- CSMS set with SetNetworkProfile, per configuration slot (connectionData as JSON),
-- and a copy of the profile of the last connection that worked, the fallback once
-- every entry of NetworkConfigurationPriority has failed (B10.FR.07).
CREATE TABLE network_profiles (
    slot INTEGER PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE network_last_connected (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    slot INTEGER NOT NULL,
    data TEXT NOT NULL
);
