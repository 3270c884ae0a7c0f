-- One row per grant (token family).
CREATE TABLE grant_view
(
    grant_id       TEXT    PRIMARY KEY,
    grant_type     TEXT    NOT NULL,
    client_id      TEXT    NOT NULL,
    username       TEXT,
    scopes         TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    created_at     TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    revoked_at     TEXT,
    revoked_reason TEXT,
    revoked_by     TEXT,
    revoked_ip     TEXT,
    version        INTEGER NOT NULL
) STRICT;
CREATE INDEX grant_view_by_client ON grant_view (client_id, grant_id);
CREATE INDEX grant_view_by_user ON grant_view (username, grant_id);

-- The token index: token hash -> everything introspection needs.
CREATE TABLE token_view
(
    token_hash TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    username   TEXT,
    scopes     TEXT NOT NULL,
    issued_at  TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status     TEXT NOT NULL,
    ended_at   TEXT
) STRICT;
CREATE INDEX token_view_by_grant ON token_view (grant_id);
CREATE INDEX token_view_by_client_user ON token_view (client_id, username, issued_at);

CREATE TABLE consent_view
(
    username   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    status     TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT,
    PRIMARY KEY (username, client_id)
) STRICT;
CREATE INDEX consent_view_by_client ON consent_view (client_id, username);

-- One row per event, for people: who, what, when, from where. Never a secret.
CREATE TABLE audit_log
(
    global_position INTEGER PRIMARY KEY,
    occurred_at     TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    aggregate_type  TEXT NOT NULL,
    aggregate_id    TEXT NOT NULL,
    actor           TEXT NOT NULL,
    client_id       TEXT,
    username        TEXT,
    grant_id        TEXT,
    request_id      TEXT NOT NULL,
    source          TEXT NOT NULL,
    ip              TEXT,
    user_agent      TEXT,
    summary         TEXT NOT NULL
) STRICT;
CREATE INDEX audit_by_time ON audit_log (occurred_at);
CREATE INDEX audit_by_client ON audit_log (client_id, global_position);
CREATE INDEX audit_by_user ON audit_log (username, global_position);
CREATE INDEX audit_by_grant ON audit_log (grant_id, global_position);
CREATE INDEX audit_by_type ON audit_log (event_type, global_position);

-- Which client and user a grant belongs to, for audit rows of later grant events.
CREATE TABLE audit_grant_subjects
(
    grant_id  TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    username  TEXT
) STRICT;

-- Hourly usage derived from events (rebuildable with the grants projection).
CREATE TABLE usage_events_hourly
(
    hour      TEXT    NOT NULL,
    client_id TEXT    NOT NULL,
    username  TEXT    NOT NULL,
    metric    TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (hour, client_id, username, metric)
) STRICT;

-- Hourly usage counted in memory for reads (introspection, userinfo, failed client
-- authentication), which append no events; flushed every 30 seconds and on shutdown. Not a
-- projection: a rebuild does not touch it.
CREATE TABLE usage_reads_hourly
(
    hour      TEXT    NOT NULL,
    client_id TEXT    NOT NULL,
    username  TEXT    NOT NULL,
    metric    TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (hour, client_id, username, metric)
) STRICT;
