-- Grants are listed by creation time (keyset: created_at, grant_id), all of them or a
-- client's or a person's: an index per list, so each page is one index range. The client's
-- and the person's indexes still serve lookups by client or person alone.
DROP INDEX grant_view_by_client;
DROP INDEX grant_view_by_user;
CREATE INDEX grant_view_by_client ON grant_view (client_id, created_at, grant_id);
CREATE INDEX grant_view_by_user ON grant_view (username, created_at, grant_id);
CREATE INDEX grant_view_by_time ON grant_view (created_at, grant_id);
