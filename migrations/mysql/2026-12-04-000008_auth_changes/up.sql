-- The change journal: one row per write that changes what a user's requests see (their
-- sessions, profile, opt-out, stored tokens), written in the same transaction as the write.
-- Instances that keep sessions in memory poll it (one statement per poll, whatever the request
-- rate) and forget the user's cached sessions. PlanetScale (Vitess) compatible: no FOREIGN KEY.
CREATE TABLE auth_changes (
  id BIGINT NOT NULL AUTO_INCREMENT
    COMMENT 'Journal position; instances read the rows after the last one they saw',
  user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'spotify_users.id whose sessions, profile or tokens changed',
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='What changed, for instances that cache sessions; old rows are purged';
