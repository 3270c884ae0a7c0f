-- Signing in through other providers (social login). The vault's part: each provider's
-- client secret, sealed under the master key, never in an event.
CREATE TABLE social_login_secrets
(
    provider_id   text PRIMARY KEY,
    sealed_secret text NOT NULL,
    updated_at    text NOT NULL
);

-- The read side: the providers as their events make them, and the identities linked.
CREATE TABLE social_login_view
(
    provider_id text PRIMARY KEY,
    name        text NOT NULL,
    config      text NOT NULL,
    status      text NOT NULL,
    created_at  text NOT NULL,
    updated_at  text NOT NULL
);

CREATE TABLE identity_view
(
    provider_id text NOT NULL,
    subject     text NOT NULL,
    username    text NOT NULL,
    linked_at   text NOT NULL,
    PRIMARY KEY (provider_id, subject)
);
CREATE INDEX identity_view_by_user ON identity_view (username, provider_id);

-- People are found by email when a provider vouches for one (a first social sign-in).
ALTER TABLE user_view ADD COLUMN email text;
UPDATE user_view SET email = lower(profile::json ->> 'email');
CREATE INDEX user_view_by_email ON user_view (email);
