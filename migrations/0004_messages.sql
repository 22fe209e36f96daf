-- Messages and reactions in the relational store (seeds: messages, reactions).
-- Used when MONGO_URL is unset; with MongoDB the same data lives in its
-- collections (src/messages/mongo-store.ts) and these tables stay empty.
-- Receipts are not a table: they are the per-member watermarks
-- conversation_members.last_read_seq / delivered_seq (see docs/MESSAGES.md).

CREATE TABLE messages (
  id uuid PRIMARY KEY,
  conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  -- per conversation 1, 2, 3, ...: allocated from conversations.last_seq in the
  -- same transaction as the insert, so no gap and no duplicate
  seq bigint NOT NULL CHECK (seq > 0),
  sender_id uuid NOT NULL,
  client_message_id text NOT NULL,
  content text NOT NULL DEFAULT '',
  parent_message_id uuid REFERENCES messages (id),
  mentions uuid[] NOT NULL DEFAULT '{}',
  attachments jsonb NOT NULL DEFAULT '[]'::jsonb,
  -- on thread parents
  reply_count int NOT NULL DEFAULT 0,
  last_reply_at timestamptz,
  created_at timestamptz NOT NULL,
  edited_at timestamptz,
  -- soft delete: the row (and its seq) stays as a tombstone
  deleted_at timestamptz,
  -- 'simple': no stemming or stop words, so every language is searched the same way
  search tsvector GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED,
  -- the keyset of ListMessages and the proof of uniqueness of seq
  CONSTRAINT messages_conversation_seq_key UNIQUE (conversation_id, seq),
  -- idempotent send: a retry on any node finds the original
  CONSTRAINT messages_client_id_key UNIQUE (conversation_id, sender_id, client_message_id)
);

-- thread view: the replies of one parent by seq
CREATE INDEX messages_thread_idx ON messages (parent_message_id, seq) WHERE parent_message_id IS NOT NULL;
-- SearchMessages
CREATE INDEX messages_search_idx ON messages USING gin (search);

CREATE TABLE message_reactions (
  message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
  emoji text NOT NULL,
  user_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- one reaction per (message, user, emoji): adding twice is a no-op
  PRIMARY KEY (message_id, emoji, user_id)
);
