ALTER TABLE oauth_login_flows
  DROP KEY idx_oauth_login_flows_pending,
  DROP KEY idx_oauth_login_flows_client_pending,
  DROP COLUMN client_key;
ALTER TABLE user_sessions
  ADD KEY idx_user_sessions_user_id (user_id),
  DROP KEY idx_user_sessions_user_liveness,
  DROP COLUMN token_expires_at,
  DROP COLUMN rotated_at,
  DROP COLUMN previous_token_id_hash;
