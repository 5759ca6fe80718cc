DROP TABLE auth_changes;
