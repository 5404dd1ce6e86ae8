-- What each gateway last acknowledged of the revocation list, and when it last said so
-- (its heartbeat): a lock answers how many connected gateways applied it.
CREATE TABLE gateway_acks (
    gateway TEXT PRIMARY KEY,
    epoch BIGINT NOT NULL,
    acked_at BIGINT NOT NULL
);
