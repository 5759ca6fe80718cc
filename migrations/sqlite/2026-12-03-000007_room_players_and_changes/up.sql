-- Listening together (SQLite dialect of migrations/mysql/2026-12-03-000007_room_players_and_changes):
-- each present person's SDK player, and a change log whose largest id is the room's version.
-- Times are INTEGER milliseconds since the Unix epoch, UTC.
CREATE TABLE room_players (
  user_id TEXT NOT NULL PRIMARY KEY, -- spotify_users.id of the owner; one player per person
  device_id TEXT NOT NULL, -- Spotify Connect device id, checked against the owner's device list
  device_name TEXT NOT NULL, -- Name the player shows in Spotify Connect
  track_uri TEXT, -- What the player plays, as its page last said (NULL: unknown)
  track_name TEXT, -- Name of that track
  is_playing INTEGER NOT NULL, -- Playing, not paused, as its page last said (0/1)
  seen_at INTEGER NOT NULL -- When its page last reported it (Unix ms); older than the stale bound = gone
) STRICT;
CREATE INDEX idx_room_players_seen_at ON room_players (seen_at);
CREATE TABLE room_changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, -- Change number; the largest is the room's version
  changed_at INTEGER NOT NULL -- When the room changed (Unix ms); old rows are purged
);
CREATE INDEX idx_room_changes_changed_at ON room_changes (changed_at);
