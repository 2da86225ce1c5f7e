-- Counters that must survive restarts (e.g. messages the queue had to drop).
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
