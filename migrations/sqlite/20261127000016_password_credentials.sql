-- Password hashes, outside the event log. An argon2 hash is a secret an auditor does not
-- need and anyone who can read the log could attack offline, so events name the hash by the
-- id of its row here ("credential") instead of holding it. A row is written before the event
-- that names it; one whose event never committed is named by nothing and never read.
CREATE TABLE password_credentials
(
    id         TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at TEXT NOT NULL
) STRICT;

CREATE INDEX password_credentials_username ON password_credentials (username);

-- Events recorded before this migration held the hash itself. Where the ledger has not been
-- chained yet (every store upgrading from a release without the chain), the hashes move
-- here and those events name them instead: the only change ever made to recorded events,
-- made once, before any digest covers them. A store already chained keeps such events as
-- they are (rewriting them would break its chain and seals); the README says so.
INSERT INTO password_credentials (id, username, hash, created_at)
SELECT 'moved:' || aggregate_id || ':' || sequence,
       aggregate_id,
       json_extract(payload, '$.' || event_type || '.password_hash'),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
FROM events
WHERE aggregate_type = 'User'
  AND event_type IN ('UserRegistered', 'PasswordChanged')
  AND json_extract(payload, '$.' || event_type || '.password_hash') IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ledger_chain);

DROP TRIGGER events_are_immutable;

UPDATE events
SET payload = json_set(
        json_remove(payload, '$.' || event_type || '.password_hash'),
        '$.' || event_type || '.credential',
        'moved:' || aggregate_id || ':' || sequence)
WHERE aggregate_type = 'User'
  AND event_type IN ('UserRegistered', 'PasswordChanged')
  AND json_extract(payload, '$.' || event_type || '.password_hash') IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM ledger_chain);

-- As created by the first migration.
CREATE TRIGGER events_are_immutable
    BEFORE UPDATE ON events
    FOR EACH ROW
    WHEN OLD.global_position IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;
