-- The sign-in session each grant was made in (the hash of its id, as in the log), so that a
-- session's end can reach every client that got an ID token in it (OpenID Connect
-- Back-Channel Logout). NULL for grants without a person's session.
ALTER TABLE grant_view ADD COLUMN session_hash TEXT;
CREATE INDEX grant_view_by_session ON grant_view (session_hash) WHERE session_hash IS NOT NULL;
