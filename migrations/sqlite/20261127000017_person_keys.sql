-- One key per person, outside the log: personal data in events (profile, IP address, user
-- agent) is sealed under it (see projections/src/personal.rs). Erasing the person sets
-- `person_key` to NULL: their sealed data opens for no one, and the row stays so that no new key is
-- made for them.
CREATE TABLE person_keys
(
    username   TEXT PRIMARY KEY,
    person_key TEXT,
    created_at TEXT NOT NULL,
    erased_at  TEXT
) STRICT;

-- When the person was erased (UserErased): their profile and email are gone from the view.
ALTER TABLE user_view ADD COLUMN erased_at TEXT;
