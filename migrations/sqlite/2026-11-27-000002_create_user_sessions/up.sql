-- App sessions (SQLite dialect of migrations/mysql/2026-11-27-000002_create_user_sessions).
-- One row per login; the row survives token rotation. Only a SHA-256 hash of the session token's
-- id (jti) is stored, never the token. user_id references spotify_users.id in code (no FOREIGN KEY).
-- Times are INTEGER milliseconds since the Unix epoch, UTC.
CREATE TABLE user_sessions (
  id TEXT NOT NULL PRIMARY KEY, -- Session id (JWT sid claim): a random UUID (v4), stable across rotations
  user_id TEXT NOT NULL, -- Owner: spotify_users.id (relation enforced in code; no FOREIGN KEY)
  token_id_hash BLOB NOT NULL CHECK (length(token_id_hash) = 32), -- SHA-256 of the current session token id (jti); an older token no longer matches, which reveals reuse
  created_at INTEGER NOT NULL, -- When the session was created (login), Unix ms
  last_active INTEGER NOT NULL, -- Last use, Unix ms; the idle timeout counts from here
  expires_at INTEGER NOT NULL, -- Absolute end of the session (Unix ms), however it is used
  revoked_at INTEGER NULL, -- When the session was revoked (logout, reuse detected, timeout), Unix ms; NULL while live
  user_agent TEXT NULL, -- User-Agent at login, cut to 512 characters
  ip_address TEXT NULL -- Client IP address at login (IPv4 or IPv6 text)
) STRICT;
CREATE UNIQUE INDEX uq_user_sessions_token_id_hash ON user_sessions (token_id_hash);
CREATE INDEX idx_user_sessions_user_id ON user_sessions (user_id);
CREATE INDEX idx_user_sessions_expires_at ON user_sessions (expires_at);
