-- Un-archiving on send (issue 12): every message un-archives the conversation
-- for the other members (the send statement's `a`, and the MongoDB path's
-- ledger), which scanned every member row of the conversation to find the few
-- archived ones, on every send: about 0.13 ms of Postgres CPU per send in
-- bench/send-cost.ts, where the member rows churn with the activity copy. This
-- index holds only archived memberships, so the common case (nobody archived)
-- is one probe of an almost empty index.
CREATE INDEX conversation_members_archived_idx ON conversation_members (conversation_id) WHERE archived;
