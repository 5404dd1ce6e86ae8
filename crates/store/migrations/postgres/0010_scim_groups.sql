-- Groups an identity provider pushes over SCIM (`/scim/v2/Groups`). Membership lives on
-- the humans (`member_of`), where policies and approvals read it; this table keeps what
-- SCIM needs besides: a stable id, the IdP's display name and external id, and the aim
-- group name (`name`, fixed when the group is created) the display name maps to.
CREATE TABLE scim_groups (
    id              UUID PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    display_name    TEXT NOT NULL,
    external_id     TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
