-- The group committer gives each event its global position in its own INSERT (the next one,
-- read from the counter by the same statement), so each row is written once. Numbering it
-- afterwards, as the trigger below did for every event, wrote each row a second time inside
-- the commit: the whole row (payload and all) updated, checked by `events_are_immutable`, and
-- its entry in the position index moved.
--
-- Other writers may still leave the position NULL and have it numbered as before. A position
-- given must be exactly the next one, so the numbering stays contiguous and in commit order
-- whoever writes.
DROP TRIGGER events_assign_global_position;

CREATE TRIGGER events_assign_global_position
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN NEW.global_position IS NULL
BEGIN
    UPDATE event_position_counter SET last_position = last_position + 1 WHERE id = 1;
    UPDATE events
    SET global_position = (SELECT last_position FROM event_position_counter WHERE id = 1)
    WHERE rowid = NEW.rowid;
END;

CREATE TRIGGER events_take_the_next_global_position
    AFTER INSERT ON events
    FOR EACH ROW
    WHEN NEW.global_position IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'an event must take the next global position')
    WHERE NEW.global_position IS NOT (SELECT last_position + 1 FROM event_position_counter WHERE id = 1);
    UPDATE event_position_counter SET last_position = NEW.global_position WHERE id = 1;
END;
