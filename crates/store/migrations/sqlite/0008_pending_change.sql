-- A change that would widen what an active identity may reach (systems, team, labels, lower
-- risk inputs) waits here, as JSON, for an approver; the identity keeps its entitlements
-- until then.
ALTER TABLE identities ADD COLUMN pending_change TEXT;
