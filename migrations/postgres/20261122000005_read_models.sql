-- One row per grant (token family).
CREATE TABLE grant_view
(
    grant_id       text    PRIMARY KEY,
    grant_type     text    NOT NULL,
    client_id      text    NOT NULL,
    username       text,
    scopes         text    NOT NULL,
    status         text    NOT NULL,
    created_at     text    NOT NULL,
    updated_at     text    NOT NULL,
    revoked_at     text,
    revoked_reason text,
    revoked_by     text,
    revoked_ip     text,
    version        bigint NOT NULL
);
CREATE INDEX grant_view_by_client ON grant_view (client_id, grant_id);
CREATE INDEX grant_view_by_user ON grant_view (username, grant_id);

-- The token index: token hash -> everything introspection needs.
CREATE TABLE token_view
(
    token_hash text PRIMARY KEY,
    kind       text NOT NULL,
    grant_id   text NOT NULL,
    client_id  text NOT NULL,
    username   text,
    scopes     text NOT NULL,
    issued_at  text NOT NULL,
    expires_at text NOT NULL,
    status     text NOT NULL,
    ended_at   text
);
CREATE INDEX token_view_by_grant ON token_view (grant_id);
CREATE INDEX token_view_by_client_user ON token_view (client_id, username, issued_at);

CREATE TABLE consent_view
(
    username   text NOT NULL,
    client_id  text NOT NULL,
    scopes     text NOT NULL,
    status     text NOT NULL,
    granted_at text NOT NULL,
    revoked_at text,
    revoked_by text,
    PRIMARY KEY (username, client_id)
);
CREATE INDEX consent_view_by_client ON consent_view (client_id, username);

-- One row per event, for people: who, what, when, from where. Never a secret.
CREATE TABLE audit_log
(
    global_position bigint PRIMARY KEY,
    occurred_at     text NOT NULL,
    event_type      text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    text NOT NULL,
    actor           text NOT NULL,
    client_id       text,
    username        text,
    grant_id        text,
    request_id      text NOT NULL,
    source          text NOT NULL,
    ip              text,
    user_agent      text,
    summary         text NOT NULL
);
CREATE INDEX audit_by_time ON audit_log (occurred_at);
CREATE INDEX audit_by_client ON audit_log (client_id, global_position);
CREATE INDEX audit_by_user ON audit_log (username, global_position);
CREATE INDEX audit_by_grant ON audit_log (grant_id, global_position);
CREATE INDEX audit_by_type ON audit_log (event_type, global_position);

-- Which client and user a grant belongs to, for audit rows of later grant events.
CREATE TABLE audit_grant_subjects
(
    grant_id  text PRIMARY KEY,
    client_id text NOT NULL,
    username  text
);

-- Hourly usage derived from events (rebuildable with the grants projection).
CREATE TABLE usage_events_hourly
(
    hour      text    NOT NULL,
    client_id text    NOT NULL,
    username  text    NOT NULL,
    metric    text    NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (hour, client_id, username, metric)
);

-- Hourly usage counted in memory for reads (introspection, userinfo, failed client
-- authentication), which append no events; flushed every 30 seconds and on shutdown. Not a
-- projection: a rebuild does not touch it.
CREATE TABLE usage_reads_hourly
(
    hour      text    NOT NULL,
    client_id text    NOT NULL,
    username  text    NOT NULL,
    metric    text    NOT NULL,
    count     bigint NOT NULL,
    PRIMARY KEY (hour, client_id, username, metric)
);
