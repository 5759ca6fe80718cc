DROP TABLE spotify_users;
