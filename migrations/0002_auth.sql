-- Accounts, device sessions and rotating refresh tokens (seed: users, refresh_tokens).

CREATE TABLE users (
  id uuid PRIMARY KEY,
  email text NOT NULL,                       -- as given (trimmed), shown to its owner
  email_normalized text NOT NULL,            -- trimmed + lowercased: the uniqueness key
  username text NOT NULL,                    -- stored lowercase, so unique case-insensitively
  display_name text NOT NULL,
  password_hash text NOT NULL,               -- argon2id PHC string
  roles text[] NOT NULL DEFAULT '{user}',
  status text NOT NULL DEFAULT 'active',
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9_.]{3,32}$'),
  CONSTRAINT users_email_normalized CHECK (email_normalized = lower(email_normalized)),
  CONSTRAINT users_status_valid CHECK (status IN ('active', 'suspended')),
  CONSTRAINT users_roles_valid CHECK (roles <@ ARRAY['user', 'admin']::text[])
);
CREATE UNIQUE INDEX users_email_normalized_key ON users (email_normalized);
CREATE UNIQUE INDEX users_username_key ON users (username);
-- Prefix search (SearchUsers): text_pattern_ops lets LIKE 'abc%' use the index under any collation.
CREATE INDEX users_username_prefix_idx ON users (username text_pattern_ops);
CREATE INDEX users_display_name_prefix_idx ON users (lower(display_name) text_pattern_ops);

-- One row per device login. A live session is not revoked, before its absolute
-- end (expires_at) and before its idle end (idle_expires_at, pushed forward by
-- every refresh). Revoked rows are kept for the audit trail until swept.
CREATE TABLE sessions (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  device_id text NOT NULL,
  device_name text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  idle_expires_at timestamptz NOT NULL,
  revoked_at timestamptz,
  revoke_reason text
);
-- One session per device: a second login from the same device revokes the first.
CREATE UNIQUE INDEX sessions_one_per_device ON sessions (user_id, device_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_user_idx ON sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- Refresh tokens are opaque random strings; only their SHA-256 is stored. A
-- used token stays (used_at set) so that presenting it again is recognised as
-- reuse and ends the session (RFC 9700 section 4.14.2).
CREATE TABLE refresh_tokens (
  token_hash bytea PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
  user_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
