DROP TABLE room_changes;
DROP TABLE room_players;
