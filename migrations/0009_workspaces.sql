-- Workspaces: one deployment, many teams (issue 17; docs/WORKSPACES.md).
--
-- A workspace has members with a role (owner, admin, member, guest) and
-- invitations (links with an expiry and a use limit, or addressed to one user
-- or one email). Every conversation belongs to exactly one workspace.
--
-- Existing data: one default workspace (the fixed id below, is_default) holds
-- every user and every conversation that existed before this migration, and
-- every user created later joins it at sign-up (the trigger at the end), so a
-- client that names no workspace keeps working unchanged in it.

CREATE TABLE workspaces (
  id uuid PRIMARY KEY,
  name text NOT NULL CHECK (name <> ''),
  -- unique, lower-case, URL-safe short name (the proto's rule, enforced here too)
  slug text COLLATE "C" NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,39}$'),
  description text NOT NULL DEFAULT '',
  -- exactly one row is the default workspace
  is_default boolean NOT NULL DEFAULT false,
  -- kept with every membership insert and delete, under the workspace row lock
  member_count int NOT NULL DEFAULT 0 CHECK (member_count >= 0),
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX workspaces_slug_key ON workspaces (slug);
CREATE UNIQUE INDEX workspaces_one_default ON workspaces (is_default) WHERE is_default;

CREATE TABLE workspace_members (
  workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
  joined_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (workspace_id, user_id)
);
-- ListMyWorkspaces and "is this user in that workspace" from the user's side.
CREATE INDEX workspace_members_user_idx ON workspace_members (user_id, workspace_id);

CREATE TABLE workspace_invites (
  id uuid PRIMARY KEY,
  workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
  -- sha256 (hex) of the secret token; the token itself is shown once and never stored
  token_hash text NOT NULL,
  role text NOT NULL CHECK (role IN ('member', 'guest')),
  expires_at timestamptz NOT NULL,
  -- 0: no limit
  max_uses int NOT NULL CHECK (max_uses >= 0),
  use_count int NOT NULL DEFAULT 0 CHECK (use_count >= 0 AND (max_uses = 0 OR use_count <= max_uses)),
  created_by uuid REFERENCES users (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- an invitation addressed to one user, or to one (normalised) email; neither: a link
  invitee_user_id uuid REFERENCES users (id) ON DELETE CASCADE,
  invitee_email text CHECK (invitee_email = lower(invitee_email)),
  CHECK (invitee_user_id IS NULL OR invitee_email IS NULL)
);
CREATE UNIQUE INDEX workspace_invites_token_key ON workspace_invites (token_hash);
CREATE INDEX workspace_invites_user_idx ON workspace_invites (invitee_user_id, created_at DESC) WHERE invitee_user_id IS NOT NULL;
CREATE INDEX workspace_invites_email_idx ON workspace_invites (invitee_email, created_at DESC) WHERE invitee_email IS NOT NULL;

-- The default workspace (src/workspaces/types.ts names the same id).
INSERT INTO workspaces (id, name, slug, description, is_default)
VALUES ('00000000-0000-4000-8000-000000000001', 'Default', 'default', '', true);

-- Every existing user joins it: deployment admins as owners, everyone else as members.
INSERT INTO workspace_members (workspace_id, user_id, role, joined_at)
SELECT '00000000-0000-4000-8000-000000000001', u.id, CASE WHEN 'admin' = ANY (u.roles) THEN 'owner' ELSE 'member' END, u.created_at
  FROM users u;
-- Without a deployment admin, the longest-standing user owns it, so it is never unmanageable.
UPDATE workspace_members SET role = 'owner'
 WHERE workspace_id = '00000000-0000-4000-8000-000000000001'
   AND NOT EXISTS (SELECT 1 FROM workspace_members WHERE workspace_id = '00000000-0000-4000-8000-000000000001' AND role = 'owner')
   AND user_id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);
UPDATE workspaces SET member_count = (SELECT count(*) FROM workspace_members WHERE workspace_id = workspaces.id)
 WHERE id = '00000000-0000-4000-8000-000000000001';

-- Every existing conversation belongs to it.
ALTER TABLE conversations ADD COLUMN workspace_id uuid REFERENCES workspaces (id);
UPDATE conversations SET workspace_id = '00000000-0000-4000-8000-000000000001';
ALTER TABLE conversations ALTER COLUMN workspace_id SET NOT NULL;
-- Writers that name no workspace (none in src/ after issue 17) land in the default one.
ALTER TABLE conversations ALTER COLUMN workspace_id SET DEFAULT '00000000-0000-4000-8000-000000000001';

-- Channel names are unique per workspace, case-insensitively (was: per deployment).
DROP INDEX conversations_name_key_idx;
CREATE UNIQUE INDEX conversations_name_key_idx ON conversations (workspace_id, name_key) WHERE name_key IS NOT NULL;
-- ListPublicChannels: keyset over one workspace's public channel names.
DROP INDEX conversations_public_channels_idx;
CREATE INDEX conversations_public_channels_idx ON conversations (workspace_id, name_key, id)
  WHERE type = 'channel' AND visibility = 'public';
-- One DM per unordered pair per workspace (was: per deployment). Not partial,
-- so ON CONFLICT (workspace_id, direct_key) can name it; non-DM rows have a
-- null direct_key and never conflict.
ALTER TABLE conversations DROP CONSTRAINT conversations_direct_key_key;
CREATE UNIQUE INDEX conversations_direct_key_idx ON conversations (workspace_id, direct_key);

-- Sign-up rule: a new user joins the default workspace in the same transaction
-- as their user row (whatever creates it: Register, the admin CLI, a seeder).
-- The first user of a default workspace without an owner becomes its owner.
-- The workspace row lock serialises the owner decision and member_count.
CREATE FUNCTION users_join_default_workspace() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ws uuid;
  has_owner boolean;
BEGIN
  SELECT id INTO ws FROM workspaces WHERE is_default FOR NO KEY UPDATE;
  IF ws IS NULL THEN
    RETURN NULL;
  END IF;
  SELECT EXISTS (SELECT 1 FROM workspace_members WHERE workspace_id = ws AND role = 'owner') INTO has_owner;
  INSERT INTO workspace_members (workspace_id, user_id, role, joined_at)
  VALUES (ws, NEW.id, CASE WHEN has_owner THEN 'member' ELSE 'owner' END, NEW.created_at)
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    UPDATE workspaces SET member_count = member_count + 1 WHERE id = ws;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER users_join_default_workspace AFTER INSERT ON users
  FOR EACH ROW EXECUTE FUNCTION users_join_default_workspace();
