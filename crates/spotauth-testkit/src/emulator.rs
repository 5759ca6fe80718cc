//! Emulator presets: the Spotify app and the listeners the suites share.

use spotauth_emulator::{EmulatorConfig, TestUser};

/// The listeners the suites log in: alice and bob (Premium), carol (free), dave (Premium, no
/// display name).
pub fn listeners() -> Vec<TestUser> {
    vec![
        TestUser::premium("alice").with_display_name("Alice"),
        TestUser::premium("bob").with_display_name("Bob"),
        TestUser::free("carol").with_display_name("Carol"),
        TestUser::premium("dave"),
    ]
}

/// A confidential Spotify app (`client_id`, `secret`) that redirects to `redirect`, with the
/// [`listeners`].
pub fn confidential_app(client_id: &str, secret: &str, redirect: &str) -> EmulatorConfig {
    listeners().into_iter().fold(
        EmulatorConfig::new(client_id).client_secret(Some(secret.to_owned())).redirect_uris([redirect]),
        EmulatorConfig::user,
    )
}
