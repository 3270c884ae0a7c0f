CREATE TABLE client_view
(
    client_id         text    PRIMARY KEY,
    name              text    NOT NULL,
    status            text    NOT NULL,
    metadata          text    NOT NULL,
    registered_via    text    NOT NULL,
    registered_at     text    NOT NULL,
    registered_by     text    NOT NULL,
    updated_at        text    NOT NULL,
    secret_rotated_at TEXT,
    version           bigint  NOT NULL
);

CREATE TABLE user_view
(
    username            text    PRIMARY KEY,
    status              text    NOT NULL,
    profile             text    NOT NULL,
    roles               text    NOT NULL,
    registered_at       text    NOT NULL,
    registered_by       text    NOT NULL,
    updated_at          text    NOT NULL,
    password_changed_at TEXT,
    version             bigint  NOT NULL
);
