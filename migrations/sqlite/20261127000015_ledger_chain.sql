-- The hash chain over the event log (src: projections/src/ledger.rs). Link n holds the digest
-- of the n-th event in commit order, computed over that event's canonical form and link
-- n-1's digest: changing, removing, inserting or reordering an event breaks every digest
-- from there on, which `authledger ledger verify` recomputes from the events themselves.
-- Written by the linker after commit; its progress is the `ledger` checkpoint row.
CREATE TABLE ledger_chain
(
    link            INTEGER PRIMARY KEY,
    global_position INTEGER NOT NULL UNIQUE,
    digest          TEXT    NOT NULL,
    linked_at       TEXT    NOT NULL
) STRICT;

-- Evidence, like the events: never changed, never removed.
CREATE TRIGGER ledger_chain_is_immutable
    BEFORE UPDATE ON ledger_chain
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'the ledger chain is immutable');
END;

CREATE TRIGGER ledger_chain_is_never_deleted
    BEFORE DELETE ON ledger_chain
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'the ledger chain is immutable');
END;
