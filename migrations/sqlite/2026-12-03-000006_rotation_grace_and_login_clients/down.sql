DROP INDEX idx_oauth_login_flows_pending;
DROP INDEX idx_oauth_login_flows_client_pending;
ALTER TABLE oauth_login_flows DROP COLUMN client_key;
DROP INDEX idx_user_sessions_user_liveness;
CREATE INDEX idx_user_sessions_user_id ON user_sessions (user_id);
ALTER TABLE user_sessions DROP COLUMN token_expires_at;
ALTER TABLE user_sessions DROP COLUMN rotated_at;
ALTER TABLE user_sessions DROP COLUMN previous_token_id_hash;
