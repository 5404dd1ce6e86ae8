-- The work behind an event (aim_domain::event::Trail): the task, session and token it
-- belongs to, the delegation chain, the human request that started it, the deciding
-- policies and what the model said. Empty for registry changes made by humans; the hash
-- chain covers only the parts that are set, so records written before this migration
-- verify unchanged.
ALTER TABLE events ADD COLUMN act TEXT NOT NULL DEFAULT '[]';            -- JSON list
ALTER TABLE events ADD COLUMN task_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN jti TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN triggered_by TEXT NOT NULL DEFAULT '';
ALTER TABLE events ADD COLUMN policies TEXT NOT NULL DEFAULT '[]';       -- JSON list
ALTER TABLE events ADD COLUMN model_decision TEXT NOT NULL DEFAULT '';   -- JSON object, or ''

CREATE INDEX events_task ON events (task_id, seq) WHERE task_id <> '';
CREATE INDEX events_jti ON events (jti, seq) WHERE jti <> '';
