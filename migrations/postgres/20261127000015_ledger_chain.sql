-- The hash chain over the event log (src: projections/src/ledger.rs). Link n holds the digest
-- of the n-th event in commit order, computed over that event's canonical form and link
-- n-1's digest: changing, removing, inserting or reordering an event breaks every digest
-- from there on, which `authledger ledger verify` recomputes from the events themselves.
-- Written by the linker after commit; its progress is the `ledger` checkpoint row.
CREATE TABLE ledger_chain
(
    link            bigint PRIMARY KEY,
    global_position bigint NOT NULL UNIQUE,
    digest          text   NOT NULL,
    linked_at       text   NOT NULL
);

CREATE FUNCTION ledger_chain_is_immutable() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the ledger chain is immutable';
END;
$$;

-- Evidence, like the events: never changed, never removed.
CREATE TRIGGER ledger_chain_is_immutable
    BEFORE UPDATE OR DELETE ON ledger_chain
    FOR EACH ROW EXECUTE FUNCTION ledger_chain_is_immutable();

CREATE TRIGGER ledger_chain_is_never_truncated
    BEFORE TRUNCATE ON ledger_chain
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_chain_is_immutable();

-- The keys that sign seals: Ed25519, the private half sealed under the master key. The
-- public halves are published (`/.well-known/ledger-keys`, `authledger ledger keys`).
CREATE TABLE ledger_keys
(
    kid            text PRIMARY KEY,
    public_key     text NOT NULL,
    sealed_private text NOT NULL,
    created_at     text NOT NULL
);

-- A seal signs the chain head as it was: link, position, digest, time. Whoever edits events
-- and recomputes the chain after them cannot make the seals agree without the private key.
CREATE TABLE ledger_seals
(
    link            bigint PRIMARY KEY,
    global_position bigint NOT NULL,
    digest          text   NOT NULL,
    sealed_at       text   NOT NULL,
    kid             text   NOT NULL,
    signature       text   NOT NULL
);

CREATE TRIGGER ledger_seals_are_immutable
    BEFORE UPDATE OR DELETE ON ledger_seals
    FOR EACH ROW EXECUTE FUNCTION ledger_chain_is_immutable();

CREATE TRIGGER ledger_seals_are_never_truncated
    BEFORE TRUNCATE ON ledger_seals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_chain_is_immutable();
