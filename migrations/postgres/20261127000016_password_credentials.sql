-- Password hashes, outside the event log. An argon2 hash is a secret an auditor does not
-- need and anyone who can read the log could attack offline, so events name the hash by the
-- id of its row here ("credential") instead of holding it. A row is written before the event
-- that names it; one whose event never committed is named by nothing and never read.
CREATE TABLE password_credentials
(
    id         text PRIMARY KEY,
    username   text NOT NULL,
    hash       text NOT NULL,
    created_at text NOT NULL
);

CREATE INDEX password_credentials_username ON password_credentials (username);

-- Events recorded before this migration held the hash itself. Where the ledger has not been
-- chained yet (every store upgrading from a release without the chain), the hashes move
-- here and those events name them instead: the only change ever made to recorded events,
-- made once, before any digest covers them. A store already chained keeps such events as
-- they are (rewriting them would break its chain and seals); the README says so.
DO
$$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM ledger_chain) THEN
        INSERT INTO password_credentials (id, username, hash, created_at)
        SELECT 'moved:' || aggregate_id || ':' || sequence,
               aggregate_id,
               payload -> event_type ->> 'password_hash',
               to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        FROM events
        WHERE aggregate_type = 'User'
          AND event_type IN ('UserRegistered', 'PasswordChanged')
          AND payload -> event_type ->> 'password_hash' IS NOT NULL;

        ALTER TABLE events DISABLE TRIGGER events_are_immutable;
        UPDATE events
        SET payload = json_build_object(
                event_type,
                ((payload -> event_type)::jsonb - 'password_hash')
                    || jsonb_build_object('credential', 'moved:' || aggregate_id || ':' || sequence))
        WHERE aggregate_type = 'User'
          AND event_type IN ('UserRegistered', 'PasswordChanged')
          AND payload -> event_type ->> 'password_hash' IS NOT NULL;
        ALTER TABLE events ENABLE TRIGGER events_are_immutable;
    END IF;
END
$$;
