-- Connected Spotify users and their encrypted Spotify tokens (SQLite dialect of
-- migrations/mysql/2026-11-27-000001_create_spotify_users: same columns, same meaning).
-- SQLite has no COMMENT clause: every column is commented with `--` on its line.
-- Times are INTEGER milliseconds since the Unix epoch, UTC. Booleans are INTEGER 0/1.
-- STRICT tables: a value of the wrong type is refused, never silently coerced. No FOREIGN KEYs.
CREATE TABLE spotify_users (
  id TEXT NOT NULL PRIMARY KEY, -- Our user id: a random UUID (v4), hyphenated
  spotify_account_key TEXT NOT NULL, -- Stable Spotify key: /v1/me account_id when present, else id. Unique; case-sensitive (BINARY collation)
  spotify_id TEXT NOT NULL, -- Spotify user id (/v1/me id) as last seen; not guaranteed stable, so not the join key
  display_name TEXT NULL, -- Spotify display name as last seen; NULL when the user has none
  access_token BLOB NULL, -- Spotify access token, XChaCha20-Poly1305 ciphertext bound to (id, column, key id); NULL after disconnect
  refresh_token BLOB NULL, -- Spotify refresh token, ciphertext as access_token; NULL after disconnect
  token_expiry INTEGER NULL, -- When the access token expires (Unix ms, UTC); NULL after disconnect
  refresh_token_expires_at INTEGER NULL, -- Absolute end of the refresh token (Unix ms): original authorization + 6 months; never extended by a refresh
  token_scopes TEXT NULL, -- Granted OAuth scopes, space separated, sorted
  token_version INTEGER NOT NULL DEFAULT 0 CHECK (token_version >= 0), -- Optimistic-concurrency version of the token columns: every token write names the version it read and bumps it
  reauth_required INTEGER NOT NULL DEFAULT 0 CHECK (reauth_required IN (0, 1)), -- 1 when Spotify answered invalid_grant or the refresh token passed its absolute expiry; cleared by a new login
  refresh_lease_holder TEXT NULL, -- Which app instance/request holds the refresh lease (one refresh per user at a time); NULL when free
  refresh_lease_until INTEGER NULL, -- When the refresh lease lapses (Unix ms), so a crashed holder cannot block refreshes forever
  is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)), -- Whether the user shows in the active-listeners list
  is_premium INTEGER NULL CHECK (is_premium IN (0, 1)), -- Spotify Premium: 1 premium, 0 free/open, NULL unknown (Development Mode apps get no product field)
  premium_product TEXT NULL, -- Raw /v1/me product value when Spotify sent one
  premium_source TEXT NOT NULL DEFAULT 'none', -- How is_premium was learned: profile, player_probe, playback_sdk or none
  premium_checked_at INTEGER NULL, -- When Premium was last checked (Unix ms)
  created_at INTEGER NOT NULL, -- When the user first connected (Unix ms)
  last_active INTEGER NOT NULL -- Last time the user did anything through the service (Unix ms)
) STRICT;
CREATE UNIQUE INDEX uq_spotify_users_account_key ON spotify_users (spotify_account_key);
CREATE INDEX idx_spotify_users_spotify_id ON spotify_users (spotify_id);
CREATE INDEX idx_spotify_users_active_last_active ON spotify_users (is_active, last_active);
CREATE INDEX idx_spotify_users_last_active ON spotify_users (last_active);
