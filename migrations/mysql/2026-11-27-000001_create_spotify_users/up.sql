-- Connected Spotify users and their encrypted Spotify tokens.
-- PlanetScale (Vitess) compatible: no FOREIGN KEY constraints; relations are enforced in code.
-- Every time column is UTC (the connection sets time_zone = '+00:00'), millisecond precision.
CREATE TABLE spotify_users (
  id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Our user id: a random UUID (v4), hyphenated',
  spotify_account_key VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
    COMMENT 'Stable Spotify key: /v1/me account_id when present, else id. Unique; case-sensitive',
  spotify_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
    COMMENT 'Spotify user id (/v1/me id) as last seen; not guaranteed stable, so not the join key',
  display_name VARCHAR(255) NULL
    COMMENT 'Spotify display name as last seen; NULL when the user has none',
  access_token VARBINARY(8192) NULL
    COMMENT 'Spotify access token, XChaCha20-Poly1305 ciphertext bound to (id, column, key id); NULL after disconnect',
  refresh_token VARBINARY(8192) NULL
    COMMENT 'Spotify refresh token, ciphertext as access_token; NULL after disconnect',
  token_expiry DATETIME(3) NULL
    COMMENT 'When the access token expires (UTC); NULL after disconnect',
  refresh_token_expires_at DATETIME(3) NULL
    COMMENT 'Absolute end of the refresh token: original authorization + 6 months (Spotify 2026 rule); never extended by a refresh',
  token_scopes VARCHAR(1024) CHARACTER SET ascii NULL
    COMMENT 'Granted OAuth scopes, space separated, sorted',
  token_version BIGINT UNSIGNED NOT NULL DEFAULT 0
    COMMENT 'Optimistic-concurrency version of the token columns: every token write names the version it read and bumps it',
  reauth_required BOOLEAN NOT NULL DEFAULT FALSE
    COMMENT 'TRUE when Spotify answered invalid_grant or the refresh token passed its absolute expiry; cleared by a new login',
  refresh_lease_holder VARCHAR(64) CHARACTER SET ascii NULL
    COMMENT 'Which app instance/request holds the refresh lease (so one instance refreshes per user at a time); NULL when free',
  refresh_lease_until DATETIME(3) NULL
    COMMENT 'When the refresh lease lapses, so a crashed holder cannot block refreshes forever',
  is_active BOOLEAN NOT NULL DEFAULT TRUE
    COMMENT 'Whether the user shows in the active-listeners list',
  is_premium BOOLEAN NULL
    COMMENT 'Spotify Premium: TRUE premium, FALSE free/open, NULL unknown (Development Mode apps get no product field)',
  premium_product VARCHAR(64) NULL
    COMMENT 'Raw /v1/me product value when Spotify sent one',
  premium_source VARCHAR(16) CHARACTER SET ascii NOT NULL DEFAULT 'none'
    COMMENT 'How is_premium was learned: profile, player_probe, playback_sdk or none',
  premium_checked_at DATETIME(3) NULL
    COMMENT 'When Premium was last checked (replaces the PRD subscriptionExpiry: Spotify exposes no subscription end date)',
  created_at DATETIME(3) NOT NULL
    COMMENT 'When the user first connected',
  last_active DATETIME(3) NOT NULL
    COMMENT 'Last time the user did anything through the service',
  PRIMARY KEY (id),
  UNIQUE KEY uq_spotify_users_account_key (spotify_account_key),
  KEY idx_spotify_users_spotify_id (spotify_id),
  KEY idx_spotify_users_active_last_active (is_active, last_active),
  KEY idx_spotify_users_last_active (last_active)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='Connected Spotify users; tokens encrypted at rest';
