DROP TABLE oauth_login_flows;
