-- App sessions. One row per login; the row survives token rotation. The session token (a JWT)
-- is never stored: only a SHA-256 hash of its id (jti), so a database leak cannot be replayed.
-- PlanetScale (Vitess) compatible: user_id references spotify_users.id in code, not by FOREIGN KEY.
CREATE TABLE user_sessions (
  id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Session id (JWT sid claim): a random UUID (v4), stable across rotations',
  user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Owner: spotify_users.id (relation enforced in code; no FOREIGN KEY on PlanetScale)',
  token_id_hash BINARY(32) NOT NULL
    COMMENT 'SHA-256 of the current session token id (jti); an older token no longer matches, which reveals reuse',
  created_at DATETIME(3) NOT NULL
    COMMENT 'When the session was created (login)',
  last_active DATETIME(3) NOT NULL
    COMMENT 'Last use; the idle timeout counts from here (written at most once a minute)',
  expires_at DATETIME(3) NOT NULL
    COMMENT 'Absolute end of the session, however it is used',
  revoked_at DATETIME(3) NULL
    COMMENT 'When the session was revoked (logout, reuse detected, timeout); NULL while live',
  user_agent VARCHAR(512) NULL
    COMMENT 'User-Agent at login, cut to 512 characters',
  ip_address VARCHAR(45) CHARACTER SET ascii NULL
    COMMENT 'Client IP address at login (IPv4 or IPv6 text)',
  PRIMARY KEY (id),
  UNIQUE KEY uq_user_sessions_token_id_hash (token_id_hash),
  KEY idx_user_sessions_user_id (user_id),
  KEY idx_user_sessions_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='App sessions; only token-id hashes are stored';
