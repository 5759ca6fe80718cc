-- The rotation grace window and the bound on pending logins per client (docs/design/threats.md).
-- Online-safe: nullable columns added, indexes added and one replaced; no FOREIGN KEY
-- (PlanetScale). The user_sessions index covers the live-session rule, so "does this user have
-- a live session" (active list, proactive refresher, token lifecycle) reads the index only; it
-- replaces the user_id index it starts with. The login-flow indexes make the pending-login
-- counts at every login index-only range scans over the pending flows (unused, unexpired)
-- only, not over every flow of the last ten minutes.
ALTER TABLE user_sessions
  ADD COLUMN previous_token_id_hash BINARY(32) NULL
    COMMENT 'SHA-256 of the token id (jti) rotated out last; it still authenticates for the rotation grace window after rotated_at',
  ADD COLUMN rotated_at BIGINT NULL
    COMMENT 'When the token was last rotated (Unix ms, UTC); NULL before the first rotation',
  ADD COLUMN token_expires_at BIGINT NULL
    COMMENT 'When the current session token expires (Unix ms, UTC): past it nothing can use the session; NULL for rows from before it was recorded',
  DROP KEY idx_user_sessions_user_id,
  ADD KEY idx_user_sessions_user_liveness (user_id, revoked_at, expires_at, last_active, token_expires_at);
ALTER TABLE oauth_login_flows
  ADD COLUMN client_key VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'The client the login came from: its IPv4 address, or its IPv6 /64 prefix; bounds pending logins per client; purged with the row',
  ADD KEY idx_oauth_login_flows_client_pending (client_key, used_at, expires_at),
  ADD KEY idx_oauth_login_flows_pending (used_at, expires_at);
