-- The change journal: one row per write that changes what a user's requests see, written in
-- the same transaction as the write (see the MySQL migration). A single SQLite instance needs
-- no polling; the journal keeps the two stores' writes identical.
CREATE TABLE auth_changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT, -- Journal position
  user_id TEXT NOT NULL -- spotify_users.id whose sessions, profile or tokens changed
) STRICT;
