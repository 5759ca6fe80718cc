-- Spotify's rate-limit backoff, shared by every app instance. Spotify limits per client id over a
-- rolling 30 s window, so one 429 (with Retry-After) must pause the calls of every user of that
-- client id on every instance. PlanetScale (Vitess) compatible: no FOREIGN KEY constraints.
CREATE TABLE spotify_rate_limits (
  client_id VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Spotify client id the backoff applies to',
  backoff_until DATETIME(3) NOT NULL
    COMMENT 'No call to Spotify for this client id before this instant (UTC); only ever extended',
  updated_at DATETIME(3) NOT NULL
    COMMENT 'When an instance last recorded a 429 for this client id',
  PRIMARY KEY (client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Per-client-id Spotify rate-limit backoff shared by all instances';

-- The proactive refresher asks for the tokens that expire soonest.
CREATE INDEX idx_spotify_users_token_expiry ON spotify_users (token_expiry);
