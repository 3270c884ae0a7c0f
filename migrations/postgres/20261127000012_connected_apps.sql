-- authledger as a client of other providers (Connected Apps). The vault's part, sealed under
-- the master key like the signing keys and never in an event: each app's client secret, and
-- the token cache, one row per (app, person; '' for the app's own tokens).
CREATE TABLE connected_app_secrets
(
    app_id        text PRIMARY KEY,
    sealed_secret text NOT NULL,
    updated_at    text NOT NULL
);

CREATE TABLE provider_token_cache
(
    app_id               text NOT NULL,
    username             text NOT NULL,
    sealed_access_token  text NOT NULL,
    sealed_refresh_token text,
    access_expires_at    text,
    updated_at           text NOT NULL,
    PRIMARY KEY (app_id, username)
);

-- The read side: the apps as their events make them, and each connection's state.
CREATE TABLE connected_app_view
(
    app_id     text PRIMARY KEY,
    name       text NOT NULL,
    client_id  text NOT NULL,
    config     text NOT NULL,
    status     text NOT NULL,
    created_at text NOT NULL,
    updated_at text NOT NULL
);

CREATE TABLE app_connection_view
(
    app_id            text NOT NULL,
    username          text NOT NULL,
    status            text NOT NULL,
    scopes            text NOT NULL,
    access_expires_at text,
    subject           text,
    connected_at      text NOT NULL,
    updated_at        text NOT NULL,
    PRIMARY KEY (app_id, username)
);
CREATE INDEX app_connection_view_by_user ON app_connection_view (username, app_id);
