-- Reservation profile: active reservations (ReserveNow), kept across restarts.
-- connector_id 0 is a reservation of any connector.
CREATE TABLE reservations (
    reservation_id INTEGER PRIMARY KEY,
    connector_id   INTEGER NOT NULL,
    id_tag         TEXT NOT NULL,
    parent_id_tag  TEXT,
    expiry_date    TEXT NOT NULL
);
