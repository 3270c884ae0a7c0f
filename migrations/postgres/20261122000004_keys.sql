-- Signing keys. Not a projection and not in events: the private part is sealed (AES-256-GCM)
-- under the master key; only public JWKs are readable.
CREATE TABLE signing_keys
(
    kid                text PRIMARY KEY,
    alg                text NOT NULL,
    sealed_private_key text NOT NULL,
    public_jwk         text NOT NULL,
    created_at         text NOT NULL,
    state              text NOT NULL
);

-- The secrets of clients whose ID tokens are HS256-signed with their client secret (Frappe
-- compatibility), sealed under the master key; keyed by the secret's hash so a rotation simply
-- selects the new row.
CREATE TABLE client_secret_keys
(
    client_id     text NOT NULL,
    secret_hash   text NOT NULL,
    sealed_secret text NOT NULL,
    PRIMARY KEY (client_id, secret_hash)
);
