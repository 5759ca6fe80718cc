DROP INDEX idx_spotify_users_token_expiry ON spotify_users;
DROP TABLE spotify_rate_limits;
