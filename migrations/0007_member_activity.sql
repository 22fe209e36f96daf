-- ListConversations in index order (docs/CONVERSATIONS.md, "Order and cost").
--
-- conversation_members.activity_at is a copy of conversations.last_message_at
-- kept only while the conversation is small (member_count <= 32, the
-- "fan-out limit", conversation_fanout_max() below); it is null in bigger
-- conversations. A user's small conversations are then read in order from
-- conversation_members_activity_idx; the big ones (few per user) are sorted by
-- the conversation's own last_message_at and merged. A message in a small
-- conversation updates at most 32 member rows; one in a 10,000-member channel
-- updates none.
--
-- Triggers keep the copy, so every writer of last_message_at or member_count
-- (the send statement, the MongoDB path's ledger, repairs, membership changes)
-- maintains it in the same statement, with no extra round trip and nothing
-- for the writer to remember.

CREATE FUNCTION conversation_fanout_max() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 32';

ALTER TABLE conversation_members ADD COLUMN activity_at timestamptz;

UPDATE conversation_members m SET activity_at = c.last_message_at
  FROM conversations c
 WHERE c.id = m.conversation_id AND c.member_count <= conversation_fanout_max();

-- A user's small conversations, most recent first (the keyset of ListConversations).
CREATE INDEX conversation_members_activity_idx ON conversation_members (user_id, activity_at DESC, conversation_id DESC)
  WHERE activity_at IS NOT NULL;
-- A user's memberships in big conversations (sorted through the conversation rows).
CREATE INDEX conversation_members_big_idx ON conversation_members (user_id, conversation_id) WHERE activity_at IS NULL;

-- New members of a small conversation get its activity. (A conversation that
-- crosses the limit with this insert is fixed by the member_count trigger.)
CREATE FUNCTION conversation_members_activity_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT CASE WHEN c.member_count <= conversation_fanout_max() THEN c.last_message_at END
    INTO NEW.activity_at
    FROM conversations c WHERE c.id = NEW.conversation_id;
  RETURN NEW;
END
$$;
CREATE TRIGGER conversation_members_activity_insert BEFORE INSERT ON conversation_members
  FOR EACH ROW EXECUTE FUNCTION conversation_members_activity_insert();

-- New activity in a small conversation, or the conversation crossing the limit either way.
CREATE FUNCTION conversations_activity_fanout() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.member_count <= conversation_fanout_max() THEN
    UPDATE conversation_members SET activity_at = NEW.last_message_at
     WHERE conversation_id = NEW.id AND activity_at IS DISTINCT FROM NEW.last_message_at;
  ELSE
    UPDATE conversation_members SET activity_at = NULL
     WHERE conversation_id = NEW.id AND activity_at IS NOT NULL;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER conversations_activity_fanout AFTER UPDATE OF last_message_at, member_count ON conversations
  FOR EACH ROW
  WHEN ((NEW.member_count <= conversation_fanout_max()
         AND (NEW.last_message_at IS DISTINCT FROM OLD.last_message_at OR NEW.member_count IS DISTINCT FROM OLD.member_count))
     OR (OLD.member_count <= conversation_fanout_max()) <> (NEW.member_count <= conversation_fanout_max()))
  EXECUTE FUNCTION conversations_activity_fanout();
