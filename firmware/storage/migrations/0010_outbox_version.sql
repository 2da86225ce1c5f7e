-- The OCPP version a queued message is written in: it is delivered over a
-- connection of that version only (firmware/queue.py). Rows from before this
-- migration were all written by the 1.6 front-end.
ALTER TABLE outbox ADD COLUMN version TEXT NOT NULL DEFAULT '1.6';
-- The head of the queue is the oldest message of the connection's version.
CREATE INDEX outbox_by_version ON outbox (version, seq);
