-- The security log (OCPP 1.6 Security Whitepaper): every security event, critical
-- or not, with when it happened. Rolling: the oldest rows go first once the
-- configured bounds are reached. size is the entry's bytes as the bounds count them.
-- A critical event is also queued in the outbox (outbox_seq) as a
-- SecurityEventNotification; delivery is NULL for events that are not sent,
-- else 'queued', 'sent' (sent_at: when the CSMS acknowledged it) or 'dropped'.
CREATE TABLE security_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT NOT NULL,
    type        TEXT NOT NULL,
    tech_info   TEXT,
    critical    INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    outbox_seq  INTEGER,
    delivery    TEXT,
    sent_at     TEXT
);
CREATE INDEX security_log_by_seq ON security_log (outbox_seq) WHERE outbox_seq IS NOT NULL;

-- One row: the security log's identity (the same id is kept in a file beside the
-- database, so a database wiped or replaced is told from a first start), and
-- whether the daemon is running (still set at a start: the previous run ended
-- without a clean shutdown) or how it last stopped.
CREATE TABLE security_state (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    log_id      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    running     INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT,
    stop_reason TEXT
);
