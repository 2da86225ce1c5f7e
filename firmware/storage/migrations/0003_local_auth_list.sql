-- Local Authorization List (Local Auth List Management profile), set by the
-- CSMS with SendLocalList. id_tag matches case-insensitively (IdToken is a
-- CiString20).
CREATE TABLE local_auth_list (
    id_tag        TEXT PRIMARY KEY COLLATE NOCASE,
    status        TEXT NOT NULL,
    expiry_date   TEXT,
    parent_id_tag TEXT
);

-- The list's version as the CSMS numbered it (one row; 0 = empty list).
CREATE TABLE local_auth_list_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
