-- Listening together: each present person's Web Playback SDK player, as their page reported it,
-- and a change log whose largest id is the room's version. Every instance polls that version (one
-- statement a second, whatever the request rate) and tells its pages when it moved.
-- PlanetScale (Vitess) compatible: no FOREIGN KEY constraints.
CREATE TABLE room_players (
  user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'spotify_users.id of the player''s owner; one player per person (one stream per account)',
  device_id VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL
    COMMENT 'Spotify Connect device id of the SDK player, checked against the owner''s device list',
  device_name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL
    COMMENT 'Name the player shows in Spotify Connect',
  track_uri VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL
    COMMENT 'What the player plays, as its page last said (NULL: unknown)',
  track_name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL
    COMMENT 'Name of that track',
  is_playing BOOLEAN NOT NULL
    COMMENT 'Playing, not paused, as its page last said',
  seen_at BIGINT NOT NULL
    COMMENT 'When its page last reported it (Unix ms, UTC); older than the stale bound = gone',
  PRIMARY KEY (user_id),
  KEY idx_room_players_seen_at (seen_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='The Web Playback SDK player of each present person';

CREATE TABLE room_changes (
  id BIGINT NOT NULL AUTO_INCREMENT
    COMMENT 'Change number; the largest is the room''s version',
  changed_at BIGINT NOT NULL
    COMMENT 'When the room changed (Unix ms, UTC); old rows are purged',
  PRIMARY KEY (id),
  KEY idx_room_changes_changed_at (changed_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
  COMMENT='One row per change of the room (arrivals, departures, players)';
