-- Strategy simulations (SPEC §9.4): the request, and the result once the run has ended.
CREATE TABLE simulations (
    id          UUID PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    finished_at BIGINT,
    status      TEXT NOT NULL,
    request     TEXT NOT NULL,
    result      TEXT
);
CREATE INDEX simulations_by_time ON simulations (created_at DESC);
