-- A source's accounts in id order: the pages a reassessment and the accounts listing read
-- (`source = ? AND id > ? ORDER BY id`). Without it the planner took (source, key) and
-- sorted the whole source for every page: a million accounts read a thousand times over.
CREATE INDEX discovered_accounts_by_source_id ON discovered_accounts (source, id);
