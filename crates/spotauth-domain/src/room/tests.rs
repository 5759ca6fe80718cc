//! Unit tests of the room, [`RoomService`](super::RoomService), over mocks of its ports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::ports::MockUserRepository;
use crate::test_support::*;
use crate::user::PremiumStatus;

fn device(id: &str) -> DeviceId {
    DeviceId::new(id).unwrap()
}

fn player(user: UserId, id: &str) -> Player {
    Player {
        user_id: user,
        device_id: device(id),
        device_name: ShortName::new("Laptop").unwrap(),
        now_playing: None,
        seen_at: NOW,
    }
}

fn report(id: &str) -> PlayerReport {
    PlayerReport { device_id: device(id), device_name: ShortName::new("Laptop").unwrap(), now_playing: None }
}

/// A room over these mocks, with a token use case whose stored token is fresh for an hour.
fn room(
    users: MockUserRepository,
    players: MockPlayerRepository,
    spotify: MockSpotifyPlayerPort,
) -> (RoomService, Probe) {
    let mut fx = Fixture::new();
    fx.no_backoff();
    fx.tokens.expect_load_tokens().returning(|id| Ok(Some(stored(id, 3600, 86400))));
    let (tokens, probe) = fx.token_service();
    let ports = RoomPorts {
        users: Arc::new(users),
        players: Arc::new(players),
        spotify: Arc::new(spotify),
        clock: Arc::new(probe.clock()),
    };
    let policy = RoomPolicy::new(Fixture::new().policy.session, SKEW);
    (RoomService::new(ports, tokens, policy), probe)
}

#[test]
fn room_values_validate() {
    assert!(DeviceId::new("0123456789abcdef0123456789abcdef01234567").is_ok());
    for bad in ["", "has space", "semi;colon", &"a".repeat(129)] {
        assert_eq!(DeviceId::new(bad), Err(RoomFieldError::DeviceId), "{bad:?}");
    }
    assert_eq!(ShortName::new("  Kitchen  ").unwrap().as_str(), "Kitchen");
    assert!(ShortName::new("bell\u{7}").is_err() && ShortName::new("   ").is_err());
    assert!(SpotifyUri::item("spotify:track:4uLU6hMCjMI75M1A2tKUQC").is_ok());
    for bad in ["spotify:album:x", "spotify:track:", "spotify:track:a:b", "https://open.spotify.com/track/x"] {
        assert!(SpotifyUri::item(bad).is_err(), "{bad}");
    }
    assert!(SpotifyUri::context("spotify:playlist:37i9dQZF1DXcBWIGoYBM5M").is_ok());
    assert!(GroupPlay::items(&[], 0).is_err());
    let many = vec!["spotify:track:a".to_owned(); GroupPlay::MAX_URIS + 1];
    assert_eq!(GroupPlay::items(&many, 0), Err(RoomFieldError::TooManyUris));
}

#[tokio::test]
async fn a_new_device_is_checked_against_the_users_own_devices_a_known_one_is_not() {
    let mut players = MockPlayerRepository::new();
    let stored_player: Arc<Mutex<Option<Player>>> = Arc::default();
    let read = stored_player.clone();
    players.expect_player_of().returning(move |_| Ok(read.lock().unwrap().clone()));
    let write = stored_player.clone();
    players.expect_upsert().times(2).returning(move |p| {
        *write.lock().unwrap() = Some(p);
        Ok(())
    });
    players.expect_bump().times(1).returning(|_| Ok(()));
    let mut spotify = MockSpotifyPlayerPort::new();
    spotify.expect_devices().times(2).returning(|t| {
        assert_eq!(t.expose(), "OLD-AT", "the reporter's own token");
        Ok(vec![device("dev1")])
    });
    let (room, _) = room(MockUserRepository::new(), players, spotify);
    let alice = user(uid(1), PremiumStatus::Unknown);

    // Not among the user's devices: refused, nothing stored.
    assert!(matches!(room.report_player(&alice, report("dev2")).await, Err(RoomError::DeviceNotFound)));
    // Listed: stored, the room moves on.
    room.report_player(&alice, report("dev1")).await.unwrap();
    // The heartbeat of the same device: stored again, no Spotify call, no change.
    room.report_player(&alice, report("dev1")).await.unwrap();
    // A free user has no player to report.
    let carol = user(uid(3), PremiumStatus::Free);
    assert!(matches!(room.report_player(&carol, report("dev1")).await, Err(RoomError::PremiumRequired)));
}

#[tokio::test]
async fn group_play_controls_only_those_it_can_and_retries_a_new_device_once() {
    let premium = user(uid(1), PremiumStatus::Premium);
    let free = user(uid(2), PremiumStatus::Free);
    let mut lapsed = user(uid(3), PremiumStatus::Premium);
    lapsed.reauth_required = true;
    let no_player = user(uid(4), PremiumStatus::Unknown);
    let people = vec![premium.clone(), free, lapsed, no_player];
    let mut users = MockUserRepository::new();
    users.expect_list_present().times(1).returning(move |_| Ok(people.clone()));
    let mut players = MockPlayerRepository::new();
    players
        .expect_live()
        .returning(|_| Ok(vec![player(uid(1), "dev1"), player(uid(2), "dev2"), player(uid(3), "dev3")]));
    players.expect_bump().times(1).returning(|_| Ok(()));
    let mut spotify = MockSpotifyPlayerPort::new();
    let mut seq = mockall::Sequence::new();
    spotify
        .expect_play()
        .times(1)
        .in_sequence(&mut seq)
        .withf(|_, d, _| d.as_str() == "dev1")
        .returning(|_, _, _| Ok(PlayerAnswer::DeviceNotFound));
    spotify.expect_transfer().times(1).in_sequence(&mut seq).returning(|_, _| Ok(PlayerAnswer::Done));
    spotify.expect_play().times(1).in_sequence(&mut seq).returning(|_, _, _| Ok(PlayerAnswer::Done));
    let (room, probe) = room(users, players, spotify);

    let what = GroupPlay::items(&["spotify:track:abc".to_owned()], 0).unwrap();
    let mut got = room.play_for_everyone(&premium, &what).await.unwrap();
    got.sort_by_key(|o| o.user_id);
    let outcomes: Vec<Outcome> = got.iter().map(|o| o.outcome).collect();
    assert_eq!(outcomes, [Outcome::Started, Outcome::PremiumRequired, Outcome::ReconnectSpotify, Outcome::NoPlayer]);
    assert_eq!(probe.sleeps(), [Duration::from_millis(500)], "one wait before the one retry");
}

#[tokio::test]
async fn hosts_and_opted_out_people_may_not_start_group_playback() {
    let (mut room, _) = room(MockUserRepository::new(), MockPlayerRepository::new(), MockSpotifyPlayerPort::new());
    let mut hidden = user(uid(1), PremiumStatus::Premium);
    hidden.is_active = false;
    assert!(matches!(room.pause_everyone(&hidden).await, Err(RoomError::NotHost)));
    room.policy.hosts = Some(vec![crate::user::SpotifyUserId::new("bob").unwrap()]);
    let alice = user(uid(2), PremiumStatus::Premium);
    assert!(matches!(room.pause_everyone(&alice).await, Err(RoomError::NotHost)));
}
