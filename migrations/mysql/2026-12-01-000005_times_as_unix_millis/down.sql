-- Back to DATETIME(3) columns (UTC) and an unsigned token_version, converting the rows: the
-- inverse of up.sql, by the same arithmetic (no time zone is read).

-- spotify_rate_limits
ALTER TABLE spotify_rate_limits
  ADD COLUMN backoff_until_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'No call to Spotify for this client id before this instant (UTC); only ever extended' AFTER backoff_until,
  ADD COLUMN updated_at_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'When an instance last recorded a 429 for this client id' AFTER updated_at;
UPDATE spotify_rate_limits SET
  backoff_until_dt = TIMESTAMPADD(MICROSECOND, backoff_until * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  updated_at_dt = TIMESTAMPADD(MICROSECOND, updated_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3)));
ALTER TABLE spotify_rate_limits
  DROP COLUMN backoff_until,
  DROP COLUMN updated_at;
ALTER TABLE spotify_rate_limits
  RENAME COLUMN backoff_until_dt TO backoff_until,
  RENAME COLUMN updated_at_dt TO updated_at;
-- The default only filled the rows above (MySQL 8's strict mode refuses zero dates).
ALTER TABLE spotify_rate_limits
  ALTER COLUMN backoff_until DROP DEFAULT,
  ALTER COLUMN updated_at DROP DEFAULT;

-- oauth_login_flows
DROP INDEX idx_oauth_login_flows_expires_at ON oauth_login_flows;
ALTER TABLE oauth_login_flows
  ADD COLUMN created_at_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'When the login began (UTC)' AFTER created_at,
  ADD COLUMN expires_at_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'When the attempt lapses (UTC): a callback at or after it is refused, and the row may be purged' AFTER expires_at,
  ADD COLUMN used_at_dt DATETIME(3) NULL
    COMMENT 'When the callback consumed the state (UTC); NULL while unused. A second callback is a replay' AFTER used_at;
UPDATE oauth_login_flows SET
  created_at_dt = TIMESTAMPADD(MICROSECOND, created_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  expires_at_dt = TIMESTAMPADD(MICROSECOND, expires_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  used_at_dt = TIMESTAMPADD(MICROSECOND, used_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3)));
ALTER TABLE oauth_login_flows
  DROP COLUMN created_at,
  DROP COLUMN expires_at,
  DROP COLUMN used_at;
ALTER TABLE oauth_login_flows
  RENAME COLUMN created_at_dt TO created_at,
  RENAME COLUMN expires_at_dt TO expires_at,
  RENAME COLUMN used_at_dt TO used_at;
-- The default only filled the rows above (MySQL 8's strict mode refuses zero dates).
ALTER TABLE oauth_login_flows
  ALTER COLUMN created_at DROP DEFAULT,
  ALTER COLUMN expires_at DROP DEFAULT;
CREATE INDEX idx_oauth_login_flows_expires_at ON oauth_login_flows (expires_at);

-- user_sessions
DROP INDEX idx_user_sessions_expires_at ON user_sessions;
ALTER TABLE user_sessions
  ADD COLUMN created_at_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'When the session was created (login)' AFTER created_at,
  ADD COLUMN last_active_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'Last use; the idle timeout counts from here (written at most once a minute)' AFTER last_active,
  ADD COLUMN expires_at_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'Absolute end of the session, however it is used' AFTER expires_at,
  ADD COLUMN revoked_at_dt DATETIME(3) NULL
    COMMENT 'When the session was revoked (logout, reuse detected, timeout); NULL while live' AFTER revoked_at;
UPDATE user_sessions SET
  created_at_dt = TIMESTAMPADD(MICROSECOND, created_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  last_active_dt = TIMESTAMPADD(MICROSECOND, last_active * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  expires_at_dt = TIMESTAMPADD(MICROSECOND, expires_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  revoked_at_dt = TIMESTAMPADD(MICROSECOND, revoked_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3)));
ALTER TABLE user_sessions
  DROP COLUMN created_at,
  DROP COLUMN last_active,
  DROP COLUMN expires_at,
  DROP COLUMN revoked_at;
ALTER TABLE user_sessions
  RENAME COLUMN created_at_dt TO created_at,
  RENAME COLUMN last_active_dt TO last_active,
  RENAME COLUMN expires_at_dt TO expires_at,
  RENAME COLUMN revoked_at_dt TO revoked_at;
-- The default only filled the rows above (MySQL 8's strict mode refuses zero dates).
ALTER TABLE user_sessions
  ALTER COLUMN created_at DROP DEFAULT,
  ALTER COLUMN last_active DROP DEFAULT,
  ALTER COLUMN expires_at DROP DEFAULT;
CREATE INDEX idx_user_sessions_expires_at ON user_sessions (expires_at);

-- spotify_users
DROP INDEX idx_spotify_users_token_expiry ON spotify_users;
DROP INDEX idx_spotify_users_active_last_active ON spotify_users;
DROP INDEX idx_spotify_users_last_active ON spotify_users;
ALTER TABLE spotify_users
  ADD COLUMN token_expiry_dt DATETIME(3) NULL
    COMMENT 'When the access token expires (UTC); NULL after disconnect' AFTER token_expiry,
  ADD COLUMN refresh_token_expires_at_dt DATETIME(3) NULL
    COMMENT 'Absolute end of the refresh token: original authorization + 6 months (Spotify 2026 rule); never extended by a refresh' AFTER refresh_token_expires_at,
  ADD COLUMN refresh_lease_until_dt DATETIME(3) NULL
    COMMENT 'When the refresh lease lapses, so a crashed holder cannot block refreshes forever' AFTER refresh_lease_until,
  ADD COLUMN premium_checked_at_dt DATETIME(3) NULL
    COMMENT 'When Premium was last checked (replaces the PRD subscriptionExpiry: Spotify exposes no subscription end date)' AFTER premium_checked_at,
  ADD COLUMN created_at_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'When the user first connected' AFTER created_at,
  ADD COLUMN last_active_dt DATETIME(3) NOT NULL DEFAULT '1970-01-01 00:00:00.000'
    COMMENT 'Last time the user did anything through the service' AFTER last_active,
  MODIFY COLUMN token_version BIGINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'Optimistic-concurrency version of the token columns: every token write names the version it read and bumps it';
UPDATE spotify_users SET
  token_expiry_dt = TIMESTAMPADD(MICROSECOND, token_expiry * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  refresh_token_expires_at_dt = TIMESTAMPADD(MICROSECOND, refresh_token_expires_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  refresh_lease_until_dt = TIMESTAMPADD(MICROSECOND, refresh_lease_until * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  premium_checked_at_dt = TIMESTAMPADD(MICROSECOND, premium_checked_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  created_at_dt = TIMESTAMPADD(MICROSECOND, created_at * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3))),
  last_active_dt = TIMESTAMPADD(MICROSECOND, last_active * 1000, CAST('1970-01-01 00:00:00' AS DATETIME(3)));
ALTER TABLE spotify_users
  DROP COLUMN token_expiry,
  DROP COLUMN refresh_token_expires_at,
  DROP COLUMN refresh_lease_until,
  DROP COLUMN premium_checked_at,
  DROP COLUMN created_at,
  DROP COLUMN last_active;
ALTER TABLE spotify_users
  RENAME COLUMN token_expiry_dt TO token_expiry,
  RENAME COLUMN refresh_token_expires_at_dt TO refresh_token_expires_at,
  RENAME COLUMN refresh_lease_until_dt TO refresh_lease_until,
  RENAME COLUMN premium_checked_at_dt TO premium_checked_at,
  RENAME COLUMN created_at_dt TO created_at,
  RENAME COLUMN last_active_dt TO last_active;
-- The default only filled the rows above (MySQL 8's strict mode refuses zero dates).
ALTER TABLE spotify_users
  ALTER COLUMN created_at DROP DEFAULT,
  ALTER COLUMN last_active DROP DEFAULT;
CREATE INDEX idx_spotify_users_token_expiry ON spotify_users (token_expiry);
CREATE INDEX idx_spotify_users_active_last_active ON spotify_users (is_active, last_active);
CREATE INDEX idx_spotify_users_last_active ON spotify_users (last_active);
