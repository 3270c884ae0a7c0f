-- Archive segments (src: projections/src/ledger/segments.rs, src/ledger_archive.rs): the
-- events of grants that ended longer ago than the retention period, moved out of the live
-- log into files of a configured directory. Their links stay in ledger_chain, so the chain
-- and the seals over it cover them still: `ledger verify` reads each missing event from its
-- segment and recomputes its digest. This table says which files must exist and what they
-- hash to.
CREATE TABLE ledger_segments
(
    name         text   PRIMARY KEY,
    sha256       text   NOT NULL,
    events       bigint NOT NULL,
    grants       bigint NOT NULL,
    first_link   bigint NOT NULL,
    last_link    bigint NOT NULL,
    ended_before text   NOT NULL,
    archived_at  text   NOT NULL,
    archived_by  text   NOT NULL
);

CREATE FUNCTION ledger_segments_are_immutable() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'ledger segments are immutable';
END;
$$;

CREATE TRIGGER ledger_segments_are_immutable
    BEFORE UPDATE OR DELETE ON ledger_segments
    FOR EACH ROW EXECUTE FUNCTION ledger_segments_are_immutable();

-- Archiving removes events from the live log, and only archiving: it says so for its own
-- transaction (SET LOCAL authledger.archiving = 'on') after writing them to a segment. A
-- setting rather than disabling the trigger, which would lock every writer out of the log
-- while the archive runs. The trigger guards against mistakes; what proves the log whole is
-- the chain, which a deletion outside an archive breaks.
CREATE OR REPLACE FUNCTION events_are_immutable() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('authledger.archiving', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'events are immutable';
END;
$$;
