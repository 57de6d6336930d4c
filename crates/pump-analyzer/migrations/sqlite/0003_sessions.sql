-- Browser sessions (SPEC §5), server-side. The cookie's secret part is stored only as its
-- SHA-256, so a copy of the database does not hand out live sessions.
CREATE TABLE sessions (
    secret_hash   TEXT    PRIMARY KEY,
    public_id     TEXT    NOT NULL UNIQUE,
    csrf_token    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    last_activity INTEGER NOT NULL,
    authenticated INTEGER NOT NULL DEFAULT 0,
    user_data     TEXT    NOT NULL DEFAULT '{}'
) WITHOUT ROWID;
CREATE INDEX sessions_by_activity ON sessions (last_activity);
