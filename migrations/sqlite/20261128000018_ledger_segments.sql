-- Archive segments (src: projections/src/ledger/segments.rs, src/ledger_archive.rs): the
-- events of grants that ended longer ago than the retention period, moved out of the live
-- log into files of a configured directory. Their links stay in ledger_chain, so the chain
-- and the seals over it cover them still: `ledger verify` reads each missing event from its
-- segment and recomputes its digest. This table says which files must exist and what they
-- hash to.
CREATE TABLE ledger_segments
(
    name        TEXT    PRIMARY KEY,
    sha256      TEXT    NOT NULL,
    events      INTEGER NOT NULL,
    grants      INTEGER NOT NULL,
    first_link  INTEGER NOT NULL,
    last_link   INTEGER NOT NULL,
    ended_before TEXT   NOT NULL,
    archived_at TEXT    NOT NULL,
    archived_by TEXT    NOT NULL
) STRICT;

CREATE TRIGGER ledger_segments_are_immutable
    BEFORE UPDATE ON ledger_segments
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'ledger segments are immutable');
END;

CREATE TRIGGER ledger_segments_are_never_deleted
    BEFORE DELETE ON ledger_segments
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'ledger segments are immutable');
END;

-- Archiving removes events from the live log, and only archiving: it puts a row here inside
-- its own transaction, after writing them to a segment, and takes it out before commit. The
-- trigger guards against mistakes; what proves the log whole is the chain, which a deletion
-- outside an archive breaks.
CREATE TABLE ledger_archiving
(
    archiving INTEGER NOT NULL
) STRICT;

DROP TRIGGER events_are_never_deleted;

CREATE TRIGGER events_are_never_deleted
    BEFORE DELETE ON events
    FOR EACH ROW
    WHEN NOT EXISTS (SELECT 1 FROM ledger_archiving)
BEGIN
    SELECT RAISE(ABORT, 'events are immutable');
END;
