-- authledger as a client of other providers (Connected Apps). The vault's part, sealed under
-- the master key like the signing keys and never in an event: each app's client secret, and
-- the token cache, one row per (app, person; '' for the app's own tokens).
CREATE TABLE connected_app_secrets
(
    app_id        TEXT PRIMARY KEY,
    sealed_secret TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

CREATE TABLE provider_token_cache
(
    app_id               TEXT NOT NULL,
    username             TEXT NOT NULL,
    sealed_access_token  TEXT NOT NULL,
    sealed_refresh_token TEXT,
    access_expires_at    TEXT,
    updated_at           TEXT NOT NULL,
    PRIMARY KEY (app_id, username)
) STRICT;

-- The read side: the apps as their events make them, and each connection's state.
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
