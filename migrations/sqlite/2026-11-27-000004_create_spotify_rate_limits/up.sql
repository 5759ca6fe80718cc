-- Spotify's rate-limit backoff (SQLite dialect of
-- migrations/mysql/2026-11-27-000004_create_spotify_rate_limits). Spotify limits per client id,
-- so one 429 pauses every user's calls. Times are INTEGER milliseconds since the Unix epoch, UTC.
CREATE TABLE spotify_rate_limits (
  client_id TEXT NOT NULL PRIMARY KEY, -- Spotify client id the backoff applies to
  backoff_until INTEGER NOT NULL, -- No call to Spotify for this client id before this instant (Unix ms); only ever extended
  updated_at INTEGER NOT NULL -- When a 429 was last recorded for this client id (Unix ms)
) STRICT;
-- The proactive refresher asks for the tokens that expire soonest.
CREATE INDEX idx_spotify_users_token_expiry ON spotify_users (token_expiry);
