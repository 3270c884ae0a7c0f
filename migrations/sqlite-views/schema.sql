-- The read side's tables on the embedded SQLite store. They live in a database file of their
-- own beside the log (`<store>-views`, attached to every connection as `views`; see
-- projections/src/views_file.rs) and are never migrated: everything in them is built from the
-- log, so a change here bumps `VERSION` in views_file.rs, and the next start builds a new views
-- file from the whole log instead of altering the old one. On Postgres the same tables are
-- made by migrations/postgres/.
--
-- One statement per `;` (the rebuild reads them one by one: tables and their unique indexes
-- first, the other indexes once the tables are filled).
--
-- An index on a column most rows may leave empty (a client-credentials grant has no user,
-- few grants come from a token exchange) is partial, `WHERE column IS NOT NULL`: every query
-- through it asks for one value (`column = $1`), which SQLite knows implies the condition,
-- and the rows without one (most of a client-credentials history) cost no index entry, on
-- insert or in a rebuild.

CREATE TABLE projection_checkpoints
(
    projection      TEXT    PRIMARY KEY,
    transaction_id  INTEGER NOT NULL DEFAULT 0,
    global_position INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE TABLE client_view
(
    client_id         TEXT    PRIMARY KEY,
    name              TEXT    NOT NULL,
    status            TEXT    NOT NULL,
    metadata          TEXT    NOT NULL,
    registered_via    TEXT    NOT NULL,
    registered_at     TEXT    NOT NULL,
    registered_by     TEXT    NOT NULL,
    updated_at        TEXT    NOT NULL,
    secret_rotated_at TEXT,
    version           INTEGER NOT NULL
) STRICT;
CREATE INDEX client_view_by_name ON client_view (name, client_id);
CREATE TABLE user_view
(
    username            TEXT    PRIMARY KEY,
    status              TEXT    NOT NULL,
    profile             TEXT    NOT NULL,
    roles               TEXT    NOT NULL,
    registered_at       TEXT    NOT NULL,
    registered_by       TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL,
    password_changed_at TEXT,
    version             INTEGER NOT NULL,
    last_login_at TEXT,
    last_failed_login_at TEXT,
    two_factor INTEGER NOT NULL DEFAULT 0,
    email TEXT,
    erased_at TEXT
) STRICT;
CREATE INDEX user_view_by_email ON user_view (email);
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
    version        INTEGER NOT NULL,
    session_hash TEXT,
    source_grant TEXT,
    act TEXT,
    acting_client_id TEXT
) STRICT;
CREATE INDEX grant_view_by_client ON grant_view (client_id, created_at, grant_id);
CREATE INDEX grant_view_by_session ON grant_view (session_hash) WHERE session_hash IS NOT NULL;
CREATE INDEX grant_view_by_time ON grant_view (created_at, grant_id);
CREATE INDEX grant_view_by_user ON grant_view (username, created_at, grant_id) WHERE username IS NOT NULL;
CREATE INDEX grant_view_source_grant ON grant_view (source_grant) WHERE source_grant IS NOT NULL;
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
    ended_at   TEXT,
    audience TEXT
) STRICT;
CREATE INDEX token_view_by_client_user ON token_view (client_id, username, issued_at);
CREATE INDEX token_view_by_grant ON token_view (grant_id);
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
    summary         TEXT NOT NULL,
    acting_client_id TEXT
) STRICT;
CREATE INDEX audit_by_client ON audit_log (client_id, global_position);
CREATE INDEX audit_by_grant ON audit_log (grant_id, global_position);
CREATE INDEX audit_by_time ON audit_log (occurred_at);
CREATE INDEX audit_by_type ON audit_log (event_type, global_position);
CREATE INDEX audit_by_user ON audit_log (username, global_position) WHERE username IS NOT NULL;
CREATE INDEX audit_log_acting_client ON audit_log (acting_client_id, global_position) WHERE acting_client_id IS NOT NULL;
CREATE TABLE audit_grant_subjects
(
    grant_id  TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    username  TEXT
) STRICT, WITHOUT ROWID;
CREATE TABLE usage_events_hourly
(
    hour      TEXT    NOT NULL,
    client_id TEXT    NOT NULL,
    username  TEXT    NOT NULL,
    metric    TEXT    NOT NULL,
    count     INTEGER NOT NULL,
    PRIMARY KEY (hour, client_id, username, metric)
) STRICT;
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
CREATE TABLE connected_app_view
(
    app_id     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    config     TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;
CREATE TABLE app_connection_view
(
    app_id            TEXT NOT NULL,
    username          TEXT NOT NULL,
    status            TEXT NOT NULL,
    scopes            TEXT NOT NULL,
    access_expires_at TEXT,
    subject           TEXT,
    connected_at      TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (app_id, username)
) STRICT;
CREATE INDEX app_connection_view_by_user ON app_connection_view (username, app_id);
CREATE TABLE social_login_view
(
    provider_id TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    config      TEXT NOT NULL,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) STRICT;
CREATE TABLE identity_view
(
    provider_id TEXT NOT NULL,
    subject     TEXT NOT NULL,
    username    TEXT NOT NULL,
    linked_at   TEXT NOT NULL,
    PRIMARY KEY (provider_id, subject)
) STRICT;
CREATE INDEX identity_view_by_user ON identity_view (username, provider_id);
