-- OCPP configuration keys changed by the CSMS (read-only keys are never stored).
CREATE TABLE config (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Persisted availability per connector (0 = whole station).
CREATE TABLE availability (
    connector_id INTEGER PRIMARY KEY,
    operative    INTEGER NOT NULL
);

-- Authorization cache: idTagInfo learned from CSMS answers.
CREATE TABLE auth_cache (
    id_tag        TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    expiry_date   TEXT,
    parent_id_tag TEXT,
    updated_at    TEXT NOT NULL
);

-- Transactions, open and closed. local_id is ours; csms_id comes from
-- StartTransaction.conf (NULL until it arrives).
CREATE TABLE transactions (
    local_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    connector_id    INTEGER NOT NULL,
    id_tag          TEXT NOT NULL,
    parent_id_tag   TEXT,
    csms_id         INTEGER,
    reservation_id  INTEGER,
    meter_start_wh  INTEGER NOT NULL,
    started_at      TEXT NOT NULL,
    last_meter_wh   REAL NOT NULL,
    last_seen_at    TEXT NOT NULL,
    stopped_at      TEXT,
    meter_stop_wh   INTEGER,
    stop_reason     TEXT,
    stop_id_tag     TEXT,
    id_tag_status   TEXT
);
CREATE INDEX transactions_open ON transactions (connector_id) WHERE stopped_at IS NULL;

-- Meter values kept for StopTransaction.transactionData.
CREATE TABLE tx_samples (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    local_id  INTEGER NOT NULL REFERENCES transactions (local_id) ON DELETE CASCADE,
    meter_value TEXT NOT NULL
);
CREATE INDEX tx_samples_by_tx ON tx_samples (local_id);

-- Outgoing transaction-related messages, persisted before they are sent and
-- removed when their CALLRESULT arrives. seq is the delivery order.
CREATE TABLE outbox (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    action     TEXT NOT NULL,
    payload    TEXT NOT NULL,
    local_tx   INTEGER,
    attempts   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
