-- OCPP 2.0.1 device model: attribute values written while the station runs
-- (by the CSMS with SetVariables, or by the station itself), for persistent
-- attributes only. Built-in values and the configuration file's are never
-- stored: they apply at every start. 0 / '' stand for "no EVSE", "no
-- connector", "no instance", so that the key has no NULLs.
CREATE TABLE device_model (
    component          TEXT NOT NULL,
    component_instance TEXT NOT NULL DEFAULT '',
    evse_id            INTEGER NOT NULL DEFAULT 0,
    connector_id       INTEGER NOT NULL DEFAULT 0,
    variable           TEXT NOT NULL,
    variable_instance  TEXT NOT NULL DEFAULT '',
    attribute          TEXT NOT NULL,
    value              TEXT NOT NULL,
    PRIMARY KEY (component, component_instance, evse_id, connector_id,
                 variable, variable_instance, attribute)
);
