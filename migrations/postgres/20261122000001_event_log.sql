-- The event log. Columns up to `metadata` are the ones postgres-es 0.5 reads and writes (it
-- inserts with an explicit column list, so the extra columns below keep their defaults).
-- The primary key is what keeps aggregate ids (client_id, username) unique.
CREATE TABLE events
(
    aggregate_type  text   NOT NULL,
    aggregate_id    text   NOT NULL,
    sequence        bigint NOT NULL CHECK (sequence >= 0),
    event_type      text   NOT NULL,
    event_version   text   NOT NULL,
    payload         json   NOT NULL,
    metadata        json   NOT NULL,
    -- Allocated before commit, so NOT commit order on its own: see transaction_id.
    global_position bigserial NOT NULL,
    -- The writing transaction. Readers take only rows below
    -- pg_snapshot_xmin(pg_current_snapshot()), where every writer has finished, and order by
    -- (transaction_id, global_position): nothing can later commit behind a reader.
    transaction_id  xid8   NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE INDEX events_commit_order ON events (transaction_id, global_position);

-- The log is what auditors read: an event never changes and is never removed.
CREATE FUNCTION events_are_immutable() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are immutable';
END;
$$;

CREATE TRIGGER events_are_immutable
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER events_are_never_truncated
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- How far each projection has read; written in the same transaction as its view rows.
CREATE TABLE projection_checkpoints
(
    projection      text   PRIMARY KEY,
    transaction_id  bigint NOT NULL DEFAULT 0,
    global_position bigint NOT NULL DEFAULT 0
);
