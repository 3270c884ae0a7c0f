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
    version             INTEGER NOT NULL
) STRICT;
