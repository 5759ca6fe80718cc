-- Times as BIGINT milliseconds since the Unix epoch (UTC) and a signed BIGINT token_version:
-- the MySQL schema becomes the SQLite one column for column, so one diesel schema
-- (crates/spotauth-sql) serves both stores.
-- Each DATETIME(3) column is replaced under its own name: a BIGINT column is added after it,
-- filled from it, the old column dropped and the new one renamed. The conversion is arithmetic
-- on the stored UTC wall-clock value (TIMESTAMPDIFF between two DATETIMEs never reads the
-- session time zone) and exact: DATETIME(3) holds whole milliseconds. Indexes on converted
-- columns are dropped first and re-created after (dropping a column would silently shrink a
-- composite index). MariaDB 10.5+ and MySQL 8 (PlanetScale); no FOREIGN KEY constraints.

-- spotify_users
DROP INDEX idx_spotify_users_token_expiry ON spotify_users;
DROP INDEX idx_spotify_users_active_last_active ON spotify_users;
DROP INDEX idx_spotify_users_last_active ON spotify_users;
ALTER TABLE spotify_users
  ADD COLUMN token_expiry_ms BIGINT NULL
    COMMENT 'When the access token expires (Unix ms, UTC); NULL after disconnect' AFTER token_expiry,
  ADD COLUMN refresh_token_expires_at_ms BIGINT NULL
    COMMENT 'Absolute end of the refresh token (Unix ms, UTC): original authorization + 6 months (Spotify 2026 rule); never extended by a refresh' AFTER refresh_token_expires_at,
  ADD COLUMN refresh_lease_until_ms BIGINT NULL
    COMMENT 'When the refresh lease lapses (Unix ms, UTC), so a crashed holder cannot block refreshes forever' AFTER refresh_lease_until,
  ADD COLUMN premium_checked_at_ms BIGINT NULL
    COMMENT 'When Premium was last checked (Unix ms, UTC; replaces the PRD subscriptionExpiry: Spotify exposes no subscription end date)' AFTER premium_checked_at,
  ADD COLUMN created_at_ms BIGINT NOT NULL
    COMMENT 'When the user first connected (Unix ms, UTC)' AFTER created_at,
  ADD COLUMN last_active_ms BIGINT NOT NULL
    COMMENT 'Last time the user did anything through the service (Unix ms, UTC)' AFTER last_active,
  MODIFY COLUMN token_version BIGINT NOT NULL DEFAULT 0
    COMMENT 'Optimistic-concurrency version of the token columns: every token write names the version it read and bumps it';
UPDATE spotify_users SET
  token_expiry_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', token_expiry) DIV 1000,
  refresh_token_expires_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', refresh_token_expires_at) DIV 1000,
  refresh_lease_until_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', refresh_lease_until) DIV 1000,
  premium_checked_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', premium_checked_at) DIV 1000,
  created_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', created_at) DIV 1000,
  last_active_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', last_active) DIV 1000;
ALTER TABLE spotify_users
  DROP COLUMN token_expiry,
  DROP COLUMN refresh_token_expires_at,
  DROP COLUMN refresh_lease_until,
  DROP COLUMN premium_checked_at,
  DROP COLUMN created_at,
  DROP COLUMN last_active;
ALTER TABLE spotify_users
  RENAME COLUMN token_expiry_ms TO token_expiry,
  RENAME COLUMN refresh_token_expires_at_ms TO refresh_token_expires_at,
  RENAME COLUMN refresh_lease_until_ms TO refresh_lease_until,
  RENAME COLUMN premium_checked_at_ms TO premium_checked_at,
  RENAME COLUMN created_at_ms TO created_at,
  RENAME COLUMN last_active_ms TO last_active;
CREATE INDEX idx_spotify_users_token_expiry ON spotify_users (token_expiry);
CREATE INDEX idx_spotify_users_active_last_active ON spotify_users (is_active, last_active);
CREATE INDEX idx_spotify_users_last_active ON spotify_users (last_active);

-- user_sessions
DROP INDEX idx_user_sessions_expires_at ON user_sessions;
ALTER TABLE user_sessions
  ADD COLUMN created_at_ms BIGINT NOT NULL
    COMMENT 'When the session was created (login), Unix ms, UTC' AFTER created_at,
  ADD COLUMN last_active_ms BIGINT NOT NULL
    COMMENT 'Last use, Unix ms, UTC; the idle timeout counts from here (written at most once a minute)' AFTER last_active,
  ADD COLUMN expires_at_ms BIGINT NOT NULL
    COMMENT 'Absolute end of the session (Unix ms, UTC), however it is used' AFTER expires_at,
  ADD COLUMN revoked_at_ms BIGINT NULL
    COMMENT 'When the session was revoked (logout, reuse detected, timeout), Unix ms, UTC; NULL while live' AFTER revoked_at;
UPDATE user_sessions SET
  created_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', created_at) DIV 1000,
  last_active_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', last_active) DIV 1000,
  expires_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', expires_at) DIV 1000,
  revoked_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', revoked_at) DIV 1000;
ALTER TABLE user_sessions
  DROP COLUMN created_at,
  DROP COLUMN last_active,
  DROP COLUMN expires_at,
  DROP COLUMN revoked_at;
ALTER TABLE user_sessions
  RENAME COLUMN created_at_ms TO created_at,
  RENAME COLUMN last_active_ms TO last_active,
  RENAME COLUMN expires_at_ms TO expires_at,
  RENAME COLUMN revoked_at_ms TO revoked_at;
CREATE INDEX idx_user_sessions_expires_at ON user_sessions (expires_at);

-- oauth_login_flows
DROP INDEX idx_oauth_login_flows_expires_at ON oauth_login_flows;
ALTER TABLE oauth_login_flows
  ADD COLUMN created_at_ms BIGINT NOT NULL
    COMMENT 'When the login began (Unix ms, UTC)' AFTER created_at,
  ADD COLUMN expires_at_ms BIGINT NOT NULL
    COMMENT 'When the attempt lapses (Unix ms, UTC): a callback at or after it is refused, and the row may be purged' AFTER expires_at,
  ADD COLUMN used_at_ms BIGINT NULL
    COMMENT 'When the callback consumed the state (Unix ms, UTC); NULL while unused. A second callback is a replay' AFTER used_at;
UPDATE oauth_login_flows SET
  created_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', created_at) DIV 1000,
  expires_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', expires_at) DIV 1000,
  used_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', used_at) DIV 1000;
ALTER TABLE oauth_login_flows
  DROP COLUMN created_at,
  DROP COLUMN expires_at,
  DROP COLUMN used_at;
ALTER TABLE oauth_login_flows
  RENAME COLUMN created_at_ms TO created_at,
  RENAME COLUMN expires_at_ms TO expires_at,
  RENAME COLUMN used_at_ms TO used_at;
CREATE INDEX idx_oauth_login_flows_expires_at ON oauth_login_flows (expires_at);

-- spotify_rate_limits
ALTER TABLE spotify_rate_limits
  ADD COLUMN backoff_until_ms BIGINT NOT NULL
    COMMENT 'No call to Spotify for this client id before this instant (Unix ms, UTC); only ever extended' AFTER backoff_until,
  ADD COLUMN updated_at_ms BIGINT NOT NULL
    COMMENT 'When an instance last recorded a 429 for this client id (Unix ms, UTC)' AFTER updated_at;
UPDATE spotify_rate_limits SET
  backoff_until_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', backoff_until) DIV 1000,
  updated_at_ms = TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', updated_at) DIV 1000;
ALTER TABLE spotify_rate_limits
  DROP COLUMN backoff_until,
  DROP COLUMN updated_at;
ALTER TABLE spotify_rate_limits
  RENAME COLUMN backoff_until_ms TO backoff_until,
  RENAME COLUMN updated_at_ms TO updated_at;
