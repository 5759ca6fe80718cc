DROP INDEX idx_spotify_users_token_expiry;
DROP TABLE spotify_rate_limits;
