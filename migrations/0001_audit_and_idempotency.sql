-- Audit log (seed: audit_logs) and idempotency keys (seed: idempotency_keys).

CREATE TABLE audit_log (
  id bigserial PRIMARY KEY,
  actor_id uuid,                 -- null for anonymous actions (e.g. failed login)
  action text NOT NULL,          -- e.g. 'auth.login.succeeded'
  entity_type text NOT NULL,     -- e.g. 'user', 'session', 'conversation'
  entity_id text NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  client_address text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (entity_type, entity_id, created_at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, created_at DESC);

-- A retried mutating call with the same `idempotency-key` header returns the
-- stored response instead of doing the work twice. Rows expire; a periodic
-- sweep deletes them (Postgres has no TTL index).
CREATE TABLE idempotency_keys (
  user_id uuid NOT NULL,
  method text NOT NULL,
  key text NOT NULL,
  request_hash text NOT NULL,
  response bytea,                -- null while the first call is still running
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (user_id, method, key)
);
CREATE INDEX idempotency_keys_expires_idx ON idempotency_keys (expires_at);
