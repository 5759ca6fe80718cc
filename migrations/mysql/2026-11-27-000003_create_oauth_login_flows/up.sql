-- OAuth login attempts in flight: the state sent to Spotify, bound to where the browser goes after.
-- Only a SHA-256 digest of the state is stored, never the state itself. Shared by every app
-- instance, so the callback may land on any of them. A row is consumed once (used_at) and purged
-- after it expires. PlanetScale (Vitess) compatible: no FOREIGN KEY constraints.
CREATE TABLE oauth_login_flows (
  state_hash BINARY(32) NOT NULL
    COMMENT 'SHA-256 of the OAuth state (at least 128 random bits); the state itself is never stored',
  return_to VARCHAR(512) NULL
    COMMENT 'Same-origin relative path to send the browser to after login; NULL for the default page',
  created_at DATETIME(3) NOT NULL
    COMMENT 'When the login began (UTC)',
  expires_at DATETIME(3) NOT NULL
    COMMENT 'When the attempt lapses (UTC): a callback at or after it is refused, and the row may be purged',
  used_at DATETIME(3) NULL
    COMMENT 'When the callback consumed the state (UTC); NULL while unused. A second callback is a replay',
  PRIMARY KEY (state_hash),
  KEY idx_oauth_login_flows_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='OAuth login attempts in flight; only state digests are stored';
