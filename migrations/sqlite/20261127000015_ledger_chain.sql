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

-- The keys that sign seals: Ed25519, the private half sealed under the master key. The
-- public halves are published (`/.well-known/ledger-keys`, `authledger ledger keys`).
CREATE TABLE ledger_keys
(
    kid            TEXT PRIMARY KEY,
    public_key     TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    created_at     TEXT NOT NULL
) STRICT;

-- A seal signs the chain head as it was: link, position, digest, time. Whoever edits events
-- and recomputes the chain after them cannot make the seals agree without the private key.
CREATE TABLE ledger_seals
(
    link            INTEGER PRIMARY KEY,
    global_position INTEGER NOT NULL,
    digest          TEXT    NOT NULL,
    sealed_at       TEXT    NOT NULL,
    kid             TEXT    NOT NULL,
    signature       TEXT    NOT NULL
) STRICT;

CREATE TRIGGER ledger_seals_are_immutable
    BEFORE UPDATE ON ledger_seals
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'ledger seals are immutable');
END;

CREATE TRIGGER ledger_seals_are_never_deleted
    BEFORE DELETE ON ledger_seals
    FOR EACH ROW
BEGIN
    SELECT RAISE(ABORT, 'ledger seals are immutable');
END;
