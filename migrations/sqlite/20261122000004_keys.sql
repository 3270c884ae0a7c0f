-- Signing keys. Not a projection and not in events: the private part is sealed (AES-256-GCM)
-- under the master key; only public JWKs are readable.
CREATE TABLE signing_keys
(
    kid                TEXT PRIMARY KEY,
    alg                TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    public_jwk         TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    state              TEXT NOT NULL
) STRICT;

-- The secrets of clients whose ID tokens are HS256-signed with their client secret (Frappe
-- compatibility), sealed under the master key; keyed by the secret's hash so a rotation simply
-- selects the new row.
CREATE TABLE client_secret_keys
(
    client_id     TEXT NOT NULL,
    secret_hash   TEXT NOT NULL,
    sealed_secret TEXT NOT NULL,
    PRIMARY KEY (client_id, secret_hash)
) STRICT;
