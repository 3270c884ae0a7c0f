-- People's TOTP secrets (two-factor sign-in), sealed (AES-256-GCM) under the master key like
-- the signing keys: never in an event. One per person; whether it is in use is the log's to say.
CREATE TABLE totp_secrets
(
    username      text PRIMARY KEY,
    sealed_secret text NOT NULL,
    created_at    text NOT NULL
);

-- Whether each person signs in with a second factor (TwoFactorEnrolled, TwoFactorRemoved).
ALTER TABLE user_view ADD COLUMN two_factor boolean NOT NULL DEFAULT false;
