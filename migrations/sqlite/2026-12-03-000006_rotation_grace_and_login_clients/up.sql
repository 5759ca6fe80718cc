-- The rotation grace window and the bound on pending logins per client (SQLite dialect of
-- migrations/mysql/2026-12-03-000006_rotation_grace_and_login_clients).
ALTER TABLE user_sessions ADD COLUMN previous_token_id_hash BLOB NULL CHECK (previous_token_id_hash IS NULL OR length(previous_token_id_hash) = 32); -- SHA-256 of the token id (jti) rotated out last; it still authenticates for the rotation grace window after rotated_at
ALTER TABLE user_sessions ADD COLUMN rotated_at INTEGER NULL; -- When the token was last rotated (Unix ms, UTC); NULL before the first rotation
ALTER TABLE user_sessions ADD COLUMN token_expires_at INTEGER NULL; -- When the current session token expires (Unix ms, UTC): past it nothing can use the session; NULL for rows from before it was recorded
ALTER TABLE oauth_login_flows ADD COLUMN client_key TEXT NULL; -- The client the login came from: its IPv4 address, or its IPv6 /64 prefix; bounds pending logins per client; purged with the row
DROP INDEX idx_user_sessions_user_id;
CREATE INDEX idx_user_sessions_user_liveness ON user_sessions (user_id, revoked_at, expires_at, last_active, token_expires_at);
CREATE INDEX idx_oauth_login_flows_client_pending ON oauth_login_flows (client_key, used_at, expires_at);
CREATE INDEX idx_oauth_login_flows_pending ON oauth_login_flows (used_at, expires_at);
