-- Sign-in sessions (the sessions projection): one row per session a sign-in opened. The id
-- itself is only in the person's signed cookie; this keeps its SHA-256. The live index loads
-- the open ones at start, so a server refuses an ended session's cookie after a restart too.
CREATE TABLE session_view
(
    session_hash text COLLATE "C" PRIMARY KEY,
    username     text COLLATE "C" NOT NULL,
    started_at   text NOT NULL,
    expires_at   text NOT NULL,
    ended_at     text,
    end_reason   text,
    ip           text,
    user_agent   text
);
CREATE INDEX session_view_by_user ON session_view (username, started_at);
