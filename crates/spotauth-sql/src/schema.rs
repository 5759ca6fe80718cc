//! The diesel tables, one definition for both backends: `migrations/mysql` and
//! `migrations/sqlite` create the same columns with the same types (times are `BIGINT` Unix
//! milliseconds, UTC; `token_version` a signed `BIGINT`; ids hyphenated UUID text; ciphertexts
//! and digests bytes). diesel's `Char`/`Varchar` are `Text` and `Varbinary` is `Binary`, so
//! these types name the MySQL columns exactly too.

diesel::table! {
    spotify_users (id) {
        id -> Text,
        spotify_account_key -> Text,
        spotify_id -> Text,
        display_name -> Nullable<Text>,
        access_token -> Nullable<Binary>,
        refresh_token -> Nullable<Binary>,
        token_expiry -> Nullable<BigInt>,
        refresh_token_expires_at -> Nullable<BigInt>,
        token_scopes -> Nullable<Text>,
        token_version -> BigInt,
        reauth_required -> Bool,
        refresh_lease_holder -> Nullable<Text>,
        refresh_lease_until -> Nullable<BigInt>,
        is_active -> Bool,
        is_premium -> Nullable<Bool>,
        premium_product -> Nullable<Text>,
        premium_source -> Text,
        premium_checked_at -> Nullable<BigInt>,
        created_at -> BigInt,
        last_active -> BigInt,
    }
}

diesel::table! {
    user_sessions (id) {
        id -> Text,
        user_id -> Text,
        token_id_hash -> Binary,
        created_at -> BigInt,
        last_active -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        user_agent -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        previous_token_id_hash -> Nullable<Binary>,
        rotated_at -> Nullable<BigInt>,
        token_expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    oauth_login_flows (state_hash) {
        state_hash -> Binary,
        return_to -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        client_key -> Nullable<Text>,
    }
}

diesel::table! {
    spotify_rate_limits (client_id) {
        client_id -> Text,
        backoff_until -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(spotify_users, user_sessions);

diesel::table! {
    room_players (user_id) {
        user_id -> Text,
        device_id -> Text,
        device_name -> Text,
        track_uri -> Nullable<Text>,
        track_name -> Nullable<Text>,
        is_playing -> Bool,
        seen_at -> BigInt,
    }
}

diesel::table! {
    room_changes (id) {
        id -> BigInt,
        changed_at -> BigInt,
    }
}

diesel::table! {
    auth_changes (id) {
        id -> BigInt,
        user_id -> Text,
    }
}
