-- Sign-in sessions (the sessions projection): one row per session a sign-in opened. The id
-- itself is only in the person's signed cookie; this keeps its SHA-256. The live index loads
-- the open ones at start, so a server refuses an ended session's cookie after a restart too.
CREATE TABLE session_view
(
    session_hash TEXT PRIMARY KEY,
    username     TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    ended_at     TEXT,
    end_reason   TEXT,
    ip           TEXT,
    user_agent   TEXT
) STRICT;
CREATE INDEX session_view_by_user ON session_view (username, started_at);
