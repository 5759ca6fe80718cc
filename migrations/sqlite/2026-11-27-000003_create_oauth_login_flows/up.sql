-- OAuth login attempts in flight (SQLite dialect of
-- migrations/mysql/2026-11-27-000003_create_oauth_login_flows). Only a SHA-256 digest of the
-- state is stored, never the state itself. Consumed once (used_at), purged after expiry.
-- Times are INTEGER milliseconds since the Unix epoch, UTC.
CREATE TABLE oauth_login_flows (
  state_hash BLOB NOT NULL PRIMARY KEY CHECK (length(state_hash) = 32), -- SHA-256 of the OAuth state; the state itself is never stored
  return_to TEXT NULL, -- Same-origin relative path to send the browser to after login; NULL for the default page
  created_at INTEGER NOT NULL, -- When the login began (Unix ms)
  expires_at INTEGER NOT NULL, -- When the attempt lapses (Unix ms): a callback at or after it is refused, and the row may be purged
  used_at INTEGER NULL -- When the callback consumed the state (Unix ms); NULL while unused. A second callback is a replay
) STRICT;
CREATE INDEX idx_oauth_login_flows_expires_at ON oauth_login_flows (expires_at);
