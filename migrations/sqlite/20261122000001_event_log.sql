-- The event log. Columns up to `metadata` are the ones sqlite-es 0.5 reads and writes; its
-- conflict detection relies on this exact primary key (SQLite error 1555), which is also what
-- keeps aggregate ids (client_id, username) unique.
CREATE TABLE events
(
    aggregate_type  TEXT    NOT NULL,
    aggregate_id    TEXT    NOT NULL,
    sequence        INTEGER NOT NULL CHECK (sequence >= 0),
    event_type      TEXT    NOT NULL,
    event_version   TEXT    NOT NULL,
    payload         TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    -- Assigned by the trigger below inside the writing transaction. SQLite has one writer at
    -- a time, so this order is commit order. (Not the implicit rowid: VACUUM may renumber it.)
    global_position INTEGER,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
) STRICT;

CREATE UNIQUE INDEX events_global_position ON events (global_position);

CREATE TABLE event_position_counter
(
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    last_position INTEGER NOT NULL
) STRICT;

INSERT INTO event_position_counter (id, last_position) VALUES (1, 0);

CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
    FOR EACH ROW
BEGIN
    UPDATE event_position_counter SET last_position = last_position + 1 WHERE id = 1;
    UPDATE events
    SET global_position = (SELECT last_position FROM event_position_counter WHERE id = 1)
    WHERE rowid = NEW.rowid;
END;

-- The log is what auditors read: once numbered, an event never changes and is never removed.
CREATE TRIGGER events_are_immutable
    BEFORE UPDATE ON events
    FOR EACH ROW
    WHEN OLD.global_position IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;

CREATE TRIGGER events_are_never_deleted
    BEFORE DELETE ON events
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;

-- How far each projection has read; written in the same transaction as its view rows.
CREATE TABLE projection_checkpoints
(
    projection      TEXT    PRIMARY KEY,
    transaction_id  INTEGER NOT NULL DEFAULT 0,
    global_position INTEGER NOT NULL DEFAULT 0
) STRICT;
