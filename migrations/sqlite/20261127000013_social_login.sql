-- Signing in through other providers (social login). The vault's part: each provider's
-- client secret, sealed under the master key, never in an event.
CREATE TABLE social_login_secrets
(
    provider_id   TEXT PRIMARY KEY,
    sealed_secret TEXT NOT NULL,
    updated_at    TEXT NOT NULL
) STRICT;

-- The read side: the providers as their events make them, and the identities linked.
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

-- People are found by email when a provider vouches for one (a first social sign-in).
ALTER TABLE user_view ADD COLUMN email TEXT;
UPDATE user_view SET email = lower(json_extract(profile, '$.email'));
CREATE INDEX user_view_by_email ON user_view (email);
