-- Identities: a change that would widen what an active identity may reach (systems, team, labels, lower
-- risk inputs) waits here, as JSON, for an approver; the identity keeps its entitlements
-- until then.
ALTER TABLE identities ADD COLUMN pending_change TEXT;
-- Tokens are bound to the agent's key (DPoP) unless an admin let this identity have bearer
-- tokens, for this recorded reason.
ALTER TABLE identities ADD COLUMN bearer_reason TEXT;
