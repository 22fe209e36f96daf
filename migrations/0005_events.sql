-- The durable event log behind MessageService.Stream/Subscribe (see docs/REALTIME.md).
-- Always relational, also when messages live in MongoDB: rows are small (ids,
-- seqs, user ids, never message bodies) and the log needs per-conversation
-- gapless numbering, which one row lock gives cheaply.

-- One row per conversation that has events. Kept out of `conversations` so
-- appending an event never waits on the row lock SendMessage holds there
-- while it allocates a message seq.
CREATE TABLE conversation_event_heads (
  conversation_id uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
  -- highest event_seq appended; per conversation 1, 2, 3, ... with no gap
  last_event_seq bigint NOT NULL DEFAULT 0,
  -- highest message seq with a logged message_created (earlier ones are
  -- logged too, or were given up on); what the repair compares with last_seq
  logged_message_seq bigint NOT NULL DEFAULT 0
);

-- Conversations that already had messages start with them "logged": there is
-- nothing to replay from before the log existed.
INSERT INTO conversation_event_heads (conversation_id, logged_message_seq)
SELECT id, last_seq FROM conversations;

CREATE TABLE conversation_events (
  conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  event_seq bigint NOT NULL CHECK (event_seq > 0),
  type text NOT NULL,
  -- ids and numbers only; the stream materialises messages and conversations when it sends
  payload jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- message_created only: the message's seq (one event per message)
  message_seq bigint,
  -- member_joined / member_left only: whose membership changed
  subject_user_id uuid,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, event_seq)
);

-- a message is announced once, whoever (publisher, gap fill, repair) logs it first
CREATE UNIQUE INDEX conversation_events_message_idx ON conversation_events (conversation_id, message_seq)
  WHERE message_seq IS NOT NULL;
-- resume: where a user's membership of a conversation began or ended
CREATE INDEX conversation_events_member_idx ON conversation_events (conversation_id, subject_user_id, event_seq)
  WHERE subject_user_id IS NOT NULL;
-- retention
CREATE INDEX conversation_events_created_idx ON conversation_events (created_at);

-- Resume cursors stay short: a cursor names a checkpoint (the per-conversation
-- positions of one stream at one moment) plus a small delta.
CREATE TABLE stream_checkpoints (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  conversation_ids uuid[] NOT NULL,
  seqs bigint[] NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (cardinality(conversation_ids) = cardinality(seqs))
);

CREATE INDEX stream_checkpoints_created_idx ON stream_checkpoints (created_at);
