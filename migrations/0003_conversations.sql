-- Conversations (DMs, groups, channels) and their members.
-- Seeds: conversations / conversation_members / channels / dm_conversations,
-- folded into one conversations table with a type column, so messages,
-- receipts and unread state work the same for every kind.
--
-- Shapes shared with the message module (do not rename): conversations.last_seq,
-- conversations.last_message_at, conversation_members.last_read_seq,
-- delivered_seq, muted_until, archived. See docs/CONVERSATIONS.md.

CREATE TABLE conversations (
  id uuid PRIMARY KEY,
  type text NOT NULL CHECK (type IN ('direct', 'group', 'channel')),
  -- channel name or group title; '' for DMs
  title text NOT NULL DEFAULT '',
  description text NOT NULL DEFAULT '',
  -- groups and DMs are always private
  visibility text NOT NULL CHECK (visibility IN ('public', 'private')),
  -- a current owner (the longest-standing one); null for DMs and for a
  -- conversation whose owners all left
  owner_id uuid REFERENCES users (id) ON DELETE SET NULL,
  member_count int NOT NULL DEFAULT 0 CHECK (member_count >= 0),
  -- highest message seq; written by the message module together with the message
  last_seq bigint NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
  -- time of the last message, or the creation time; never decreases
  last_message_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- "<smaller uuid>:<larger uuid>" for DMs: one DM per unordered pair,
  -- enforced by the unique constraint rather than by read-then-write
  direct_key text UNIQUE,
  -- lower-cased channel name (ASCII charset, so lower() is unambiguous);
  -- C collation so prefix ranges and ordering use the index byte-wise
  name_key text COLLATE "C" GENERATED ALWAYS AS (CASE WHEN type = 'channel' THEN lower(title) END) STORED,
  CHECK ((type = 'direct') = (direct_key IS NOT NULL)),
  CHECK (type = 'channel' OR visibility = 'private')
);

-- channel names are unique per deployment, case-insensitively
CREATE UNIQUE INDEX conversations_name_key_idx ON conversations (name_key) WHERE name_key IS NOT NULL;
-- ListPublicChannels: keyset over public channel names (optionally by prefix)
CREATE INDEX conversations_public_channels_idx ON conversations (name_key, id)
  WHERE type = 'channel' AND visibility = 'public';

CREATE TABLE conversation_members (
  conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
  user_id uuid NOT NULL REFERENCES users (id),
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  joined_at timestamptz NOT NULL DEFAULT now(),
  -- unread_count = GREATEST(0, conversations.last_seq - last_read_seq)
  last_read_seq bigint NOT NULL DEFAULT 0 CHECK (last_read_seq >= 0),
  delivered_seq bigint NOT NULL DEFAULT 0 CHECK (delivered_seq >= 0),
  muted_until timestamptz,
  archived boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, user_id)
);

-- ListConversations: a user's memberships (then one PK probe per conversation)
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id, conversation_id);
