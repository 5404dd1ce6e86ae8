-- Each identity's behavioural baseline, learnt from its decisions (see aim_domain::baseline):
-- derived from the audit log, saved every few seconds so a restart does not start over.
-- events: how many calls it has learnt from; a replica never replaces a profile that has
-- learnt more.
CREATE TABLE baselines (
    identity_id BLOB PRIMARY KEY NOT NULL,
    profile TEXT NOT NULL,
    events BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
