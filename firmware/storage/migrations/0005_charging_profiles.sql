-- Charging profiles installed by SetChargingProfile (and the TxProfile of a
-- RemoteStartTransaction), kept across restarts. ``payload`` is the OCPP 1.6
-- ChargingProfile object as JSON; the profile id is unique station-wide (§5.16.3).
CREATE TABLE charging_profiles (
    profile_id   INTEGER PRIMARY KEY,
    connector_id INTEGER NOT NULL,
    payload      TEXT NOT NULL
);
