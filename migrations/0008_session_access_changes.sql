-- Revocation catch-up (docs/AUTH.md, "Revocation across nodes").
--
-- Every node keeps the revoked and "stale" sessions in memory, pushed to it
-- over the ephemeral store's pub/sub, and catches up from this table
-- periodically (a missed message, a reconnect): "which sessions changed their
-- access since T". access_changed_at is set by the database (a trigger), so
-- the catch-up does not depend on the application nodes' clocks.

-- Tokens of this session issued before this time are refused (roles changed: the client refreshes).
ALTER TABLE sessions ADD COLUMN access_stale_before timestamptz;
-- When revoked_at or access_stale_before last changed (database clock).
ALTER TABLE sessions ADD COLUMN access_changed_at timestamptz;
CREATE INDEX sessions_access_changed_idx ON sessions (access_changed_at) WHERE access_changed_at IS NOT NULL;

CREATE FUNCTION sessions_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.access_changed_at := clock_timestamp();
  RETURN NEW;
END
$$;
CREATE TRIGGER sessions_access_changed BEFORE UPDATE OF revoked_at, access_stale_before ON sessions
  FOR EACH ROW
  WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at OR NEW.access_stale_before IS DISTINCT FROM OLD.access_stale_before)
  EXECUTE FUNCTION sessions_access_changed();
