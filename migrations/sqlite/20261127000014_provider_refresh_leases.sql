-- Who is refreshing a connection's tokens right now, across every process on this store (the
-- server's instances and the CLI): a provider that rotates refresh tokens takes a second
-- refresh with the same token for a replay and may revoke the whole grant, so only the
-- holder of an unexpired lease refreshes; the others wait for its result.
CREATE TABLE provider_refresh_leases
(
    app_id   TEXT NOT NULL,
    username TEXT NOT NULL,
    holder   TEXT NOT NULL,
    held_until TEXT NOT NULL,
    PRIMARY KEY (app_id, username)
) STRICT;
