//! Diesel table definitions, matching `migrations/mysql`.

diesel::table! {
    spotify_users (id) {
        id -> Char,
        spotify_account_key -> Varchar,
        spotify_id -> Varchar,
        display_name -> Nullable<Varchar>,
        access_token -> Nullable<Varbinary>,
        refresh_token -> Nullable<Varbinary>,
        token_expiry -> Nullable<Datetime>,
        refresh_token_expires_at -> Nullable<Datetime>,
        token_scopes -> Nullable<Varchar>,
        token_version -> Unsigned<Bigint>,
        reauth_required -> Bool,
        refresh_lease_holder -> Nullable<Varchar>,
        refresh_lease_until -> Nullable<Datetime>,
        is_active -> Bool,
        is_premium -> Nullable<Bool>,
        premium_product -> Nullable<Varchar>,
        premium_source -> Varchar,
        premium_checked_at -> Nullable<Datetime>,
        created_at -> Datetime,
        last_active -> Datetime,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Char,
        user_id -> Char,
        token_id_hash -> Binary,
        created_at -> Datetime,
        last_active -> Datetime,
        expires_at -> Datetime,
        revoked_at -> Nullable<Datetime>,
        user_agent -> Nullable<Varchar>,
        ip_address -> Nullable<Varchar>,
    }
}

diesel::table! {
    oauth_login_flows (state_hash) {
        state_hash -> Binary,
        return_to -> Nullable<Varchar>,
        created_at -> Datetime,
        expires_at -> Datetime,
        used_at -> Nullable<Datetime>,
    }
}

diesel::table! {
    spotify_rate_limits (client_id) {
        client_id -> Varchar,
        backoff_until -> Datetime,
        updated_at -> Datetime,
    }
}

diesel::allow_tables_to_appear_in_same_query!(spotify_users, user_sessions);
