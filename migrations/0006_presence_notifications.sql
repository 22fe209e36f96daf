-- Presence snapshot (seed 003: user_presence): written on online/offline
-- transitions so last_seen_at survives a Redis restart. Live presence is in Redis.
CREATE TABLE user_presence (
  user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  status text NOT NULL,
  last_seen_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- Notifications (seed: notifications) for the relational store; MongoDB holds
-- them in a collection of the same shape when MONGO_URL is set.
-- One row summarises the messages of one conversation for one user within one
-- batch window: batch_key = user:conversation:window start. The window's end
-- is when it is flushed to push (batched_at).
CREATE TABLE notifications (
  id uuid PRIMARY KEY,
  user_id uuid NOT NULL,
  conversation_id uuid NOT NULL,
  batch_key text NOT NULL UNIQUE,
  type text NOT NULL CHECK (type IN ('mention', 'thread_reply', 'direct_message')),
  message_ids uuid[] NOT NULL,          -- the first 50, oldest first
  message_count int NOT NULL,
  sender_ids uuid[] NOT NULL,
  preview text NOT NULL,                -- of the latest message
  last_seq bigint NOT NULL,
  created_at timestamptz NOT NULL,
  window_ends_at timestamptz NOT NULL,
  batched_at timestamptz,
  seen_at timestamptz
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unseen_idx ON notifications (user_id) WHERE seen_at IS NULL;
CREATE INDEX notifications_due_idx ON notifications (window_ends_at) WHERE batched_at IS NULL;
