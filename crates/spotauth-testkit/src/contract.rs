//! The repository contract of the domain's storage ports (`UserRepository`,
//! `TokenRepository`, `SessionRepository`, `LoginFlowRepository`, `RateLimitRepository`),
//! written ONCE as async test functions over a [`StoreFixture`], and the
//! [`contract_tests!`](crate::contract_tests) macro that turns them into one `#[tokio::test]`
//! each in a store's integration-test binary.
//!
//! Each test gets a fresh, migrated, empty store from the fixture builder, so tests may use
//! fixed ids and never see each other's rows.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spotauth_crypto::Sha256Digests;
use spotauth_domain::ids::{SessionId, UserId};
use spotauth_domain::login::{
    ClientKey, ConsumeOutcome, LoginFlow, NewLoginFlow, PendingLogins, ReturnTo, StateDigest,
};
use spotauth_domain::ports::{
    Digests, Freshness, LeaseOutcome, LoginUpdate, NewUser, RepoError, SessionRepository, TokenCipher, UniqueKey,
};
use spotauth_domain::secret::OAuthState;
use spotauth_domain::session::{
    LiveAfter, NewSession, Session, SessionMeta, SessionOwner, SessionPolicy, SessionView, TokenIdHash,
};
use spotauth_domain::time::Timestamp;
use spotauth_domain::token::{
    EncryptedToken, NewTokens, RefreshedTokens, Scopes, TokenBinding, TokenColumn, TokenVersion,
};
use spotauth_domain::user::{
    DisplayName, PageRequest, PremiumSource, PremiumStatus, SpotifyAccountKey, SpotifyUserId, Subscription,
};

use spotauth_sql::Repositories;

use crate::keys::keyring;

/// A fresh, migrated, empty store under test, as the store's test binary builds it.
#[async_trait]
pub trait StoreFixture: Send + Sync + 'static {
    /// The store's repositories (shared by concurrent tasks).
    fn repositories(&self) -> Repositories;

    /// Runs `sql` (a query whose one column `v` is nullable bytes) on a connection of its own,
    /// past the repositories, so the contract can look at what is really stored.
    async fn raw_bytes(&self, sql: &str) -> Vec<Option<Vec<u8>>>;
}

/// The row of a [`StoreFixture::raw_bytes`] query.
#[derive(Debug, diesel::QueryableByName)]
pub struct RawBytes {
    /// The column.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Binary>)]
    pub v: Option<Vec<u8>>,
}

/// Expands to a module `contract` holding one `#[tokio::test]` per contract test, each building
/// a fresh fixture with the given `async fn() -> impl StoreFixture` (dropped at the test's end).
/// The calling crate needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.
///
/// ```ignore
/// async fn fixture() -> MyFixture { /* fresh migrated store */ }
/// spotauth_testkit::contract_tests!(fixture);
/// ```
#[macro_export]
macro_rules! contract_tests {
    ($make:path) => {
        $crate::contract_tests!(@tests $make;
            user_insert_get_find_and_conflict,
            user_unknown_premium_round_trips,
            user_active_list_pagination_ordering_and_toggling,
            user_subscription_is_recorded,
            user_touch_sets_last_active,
            user_writes_return_the_row_as_get_reads_it,
            user_active_total_counts_the_items_of_every_page,
            user_active_total_and_page_come_from_one_snapshot,
            write_whose_caller_goes_away_still_completes_whole,
            read_whose_caller_goes_away_leaves_every_later_answer_right,
            token_columns_hold_ciphertext_that_round_trips,
            token_refresh_write_is_guarded_and_keeps_the_refresh_token_unless_replaced,
            token_concurrent_refresh_writes_exactly_one_wins,
            token_reauth_mark_update_on_login_delete_and_no_resurrection,
            token_refresh_lease_excludes_others_until_released_or_expired,
            token_concurrent_lease_requests_grant_exactly_one,
            token_refresh_candidates_are_expiring_connected_signed_in_users,
            token_idle_users_lose_their_tokens_after_the_retention,
            token_rows_page_by_id_and_the_newest_one_is_found,
            user_active_list_shows_only_people_signed_in_who_did_not_opt_out,
            rate_limit_backoff_only_ever_extends,
            rate_limit_concurrent_extensions_keep_the_longest,
            session_create_get_rotate_touch_revoke,
            session_concurrent_rotation_has_one_winner,
            session_load_view_reads_the_owner_in_one_call,
            session_revoke_all_and_purge,
            session_list_for_user_and_revoke_all_but_one,
            user_erase_leaves_nothing_of_the_user,
            flow_create_and_consume_once,
            flow_unknown_state,
            flow_expired_is_not_consumable,
            flow_concurrent_consumes_exactly_one,
            flow_duplicate_state_conflicts,
            flow_purge_expired,
            flow_state_is_stored_only_as_a_digest,
            flow_pending_logins_are_counted_per_client_and_in_all,
            room_players_are_one_per_person_and_leave_by_device,
            room_version_only_grows_and_survives_purges,
            journal_records_every_write_that_changes_a_view,
            touch_many_only_moves_last_active_forward,
        );
    };
    (@tests $make:path; $($name:ident),* $(,)?) => {
        /// The shared repository contract (`spotauth-testkit`), one test per item.
        mod contract {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture = $make().await;
                    $crate::contract::$name(&fixture).await;
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Test data
// ---------------------------------------------------------------------------------------------

/// The fixed "now" of the contract tests.
pub const NOW: Timestamp = Timestamp::from_unix_seconds(1_800_000_000);

/// User number `n`: id `[n; 16]`, account key `acct-{n}`, Spotify id `user{n}`, tokens `AT-{n}` and
/// `RT-{n}` encrypted with [`keyring`].
pub fn new_user(n: u8, premium: PremiumStatus) -> NewUser {
    let id = UserId::from_bytes([n; 16]);
    let c = keyring();
    NewUser {
        id,
        account_key: SpotifyAccountKey::new(format!("acct-{n}")).unwrap(),
        spotify_id: SpotifyUserId::new(format!("user{n}")).unwrap(),
        display_name: Some(DisplayName::new(format!("User ñ {n} 🎵")).unwrap()),
        subscription: Subscription {
            status: premium,
            product: premium.as_option().map(|p| if p { "premium".into() } else { "free".into() }),
            source: PremiumSource::Profile,
            checked_at: Some(NOW),
        },
        tokens: NewTokens {
            access_token: c
                .encrypt(&format!("AT-{n}"), TokenBinding { user_id: id, column: TokenColumn::Access })
                .unwrap(),
            refresh_token: c
                .encrypt(&format!("RT-{n}"), TokenBinding { user_id: id, column: TokenColumn::Refresh })
                .unwrap(),
            access_expires_at: NOW.plus(Duration::from_secs(3600)),
            refresh_expires_at: NOW.plus(Duration::from_secs(184 * 86400)),
            scopes: Scopes::parse("streaming user-read-email user-read-private"),
        },
        now: NOW,
    }
}

/// A refresh result with access token bytes `AT-{tag}` and, when given, refresh token bytes.
pub fn refreshed(tag: &str, refresh: Option<&str>) -> RefreshedTokens {
    RefreshedTokens {
        access_token: EncryptedToken::from_bytes(format!("AT-{tag}").into_bytes()),
        access_expires_at: NOW.plus(Duration::from_secs(7200)),
        refresh_token: refresh.map(|r| EncryptedToken::from_bytes(r.as_bytes().to_vec())),
        scopes: Scopes::parse("streaming"),
    }
}

/// A token-id hash made of one repeated byte.
pub fn hash(b: u8) -> TokenIdHash {
    TokenIdHash::from_bytes([b; 32])
}

/// Session `id` of user `user`, first token hash `hash(id)`, one day long.
pub fn new_session(id: u8, user: u8) -> NewSession {
    NewSession {
        id: SessionId::from_bytes([id; 16]),
        user_id: UserId::from_bytes([user; 16]),
        token_id_hash: hash(id),
        created_at: NOW,
        expires_at: NOW.plus(Duration::from_secs(86400)),
        token_expires_at: NOW.plus(Duration::from_secs(86400)),
        meta: SessionMeta::new(Some("Mozilla/5.0 (X11)"), Some("2001:db8::1".into())),
    }
}

/// An OAuth state that looks like a real one (the value is what matters, not its randomness).
pub fn state(tag: &str) -> OAuthState {
    OAuthState::new(format!("st-{tag}-Zm9vYmFyYmF6cXV4cXV1eA")).unwrap()
}

/// The digest a login flow of `state(tag)` is stored under (the crypto port's, as in production).
pub fn digest(tag: &str) -> StateDigest {
    Sha256Digests.oauth_state(&state(tag))
}

/// A login flow for `state(tag)`, created at [`NOW`], lapsing after `ttl_secs`.
pub fn new_flow(tag: &str, return_to: Option<&str>, ttl_secs: u64) -> NewLoginFlow {
    NewLoginFlow {
        state: digest(tag),
        return_to: return_to.map(|r| ReturnTo::new(r).unwrap()),
        created_at: NOW,
        expires_at: NOW.plus(Duration::from_secs(ttl_secs)),
        client: None,
    }
}

/// "Live now" at [`NOW`] under the default session policy.
pub fn live() -> LiveAfter {
    SessionPolicy::default().live_after(NOW)
}

/// Signs users in: session `n` (live for a day from [`NOW`]) for each user `n`.
pub async fn sign_in(r: &Repositories, users: impl IntoIterator<Item = u8>) {
    for n in users {
        r.sessions.create(new_session(n, n)).await.unwrap();
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn spotify_ids(page: &[spotauth_domain::user::User]) -> Vec<String> {
    page.iter().map(|u| u.spotify_id.as_str().to_owned()).collect()
}

fn uid(n: u8) -> UserId {
    UserId::from_bytes([n; 16])
}

/// The session as stored (`load_view` without its owner).
async fn session_of(s: &Arc<dyn SessionRepository>, id: SessionId) -> Option<Session> {
    s.load_view(id, Freshness::Latest).await.unwrap().map(|v| v.session)
}

// ---------------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------------

/// Insert, get, find by account key (case-sensitive), `Conflict(AccountKey)` and
/// `Conflict(UserId)` without losing the stored row.
pub async fn user_insert_get_find_and_conflict<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    let u = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    assert_eq!(u.id, uid(1));
    assert_eq!(u.display_name.as_ref().unwrap().as_str(), "User ñ 1 🎵");
    assert_eq!(u.subscription.status, PremiumStatus::Premium);
    assert_eq!(u.subscription.product.as_deref(), Some("premium"));
    assert_eq!(u.subscription.source, PremiumSource::Profile);
    assert_eq!(u.subscription.checked_at, Some(NOW));
    assert_eq!((u.created_at, u.last_active), (NOW, NOW));
    assert!(u.is_active && u.has_tokens && !u.reauth_required);
    assert_eq!(s.get(u.id).await.unwrap(), Some(u.clone()));
    assert_eq!(s.find_by_account_key(&u.account_key).await.unwrap(), Some(u.clone()));
    assert_eq!(
        s.find_by_account_key(&SpotifyAccountKey::new("ACCT-1").unwrap()).await.unwrap(),
        None,
        "keys are case-sensitive"
    );
    assert_eq!(s.get(uid(9)).await.unwrap(), None);

    let mut dup = new_user(2, PremiumStatus::Free);
    dup.account_key = u.account_key.clone();
    assert_eq!(s.insert(dup).await.unwrap_err(), RepoError::Conflict(UniqueKey::AccountKey));
    assert_eq!(s.get(uid(2)).await.unwrap(), None, "nothing written on conflict");
    let mut same_id = new_user(1, PremiumStatus::Free);
    same_id.account_key = SpotifyAccountKey::new("other").unwrap();
    assert_eq!(s.insert(same_id).await.unwrap_err(), RepoError::Conflict(UniqueKey::UserId));
    let both_taken = new_user(1, PremiumStatus::Free);
    assert_eq!(s.insert(both_taken).await.unwrap_err(), RepoError::Conflict(UniqueKey::UserId), "the id wins");
    // Nothing stored was lost.
    assert_eq!(s.get(u.id).await.unwrap(), Some(u));
    // A key differing only in case is another account.
    let mut upper = new_user(3, PremiumStatus::Free);
    upper.account_key = SpotifyAccountKey::new("ACCT-1").unwrap();
    s.insert(upper).await.unwrap();
}

/// Unknown Premium status (no product, never checked) round-trips as unknown, not as free.
pub async fn user_unknown_premium_round_trips<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    let mut n = new_user(3, PremiumStatus::Unknown);
    n.subscription = Subscription::unknown();
    let u = s.insert(n).await.unwrap();
    assert_eq!(u.subscription, Subscription::unknown());
    assert_eq!(s.get(u.id).await.unwrap().unwrap().subscription, Subscription::unknown());
}

/// Active users, most recently active first then by id, paginated with a true total; an empty
/// page past the end; `set_active` toggles and sets `last_active`; `NotFound` for unknown ids.
pub async fn user_active_list_pagination_ordering_and_toggling<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    for n in 1..=5u8 {
        let mut u = new_user(n, PremiumStatus::Premium);
        u.now = NOW.plus(secs(u64::from(n)));
        s.insert(u).await.unwrap();
    }
    // Two users active at the same instant are ordered by id.
    let mut tie = new_user(6, PremiumStatus::Free);
    tie.now = NOW.plus(secs(3));
    s.insert(tie).await.unwrap();
    sign_in(&f.repositories(), 1..=6).await;
    let off = s.set_active(uid(2), false, NOW.plus(secs(100))).await.unwrap();
    assert!(!off.is_active);
    assert_eq!(off.last_active, NOW.plus(secs(100)));
    let page = s.list_active(PageRequest::new(0, 2).unwrap(), live()).await.unwrap();
    assert_eq!(page.total, 5);
    assert_eq!(page.request, PageRequest::new(0, 2).unwrap());
    assert_eq!(spotify_ids(&page.items), ["user5", "user4"], "most recently active first");
    let page = s.list_active(PageRequest::new(2, 2).unwrap(), live()).await.unwrap();
    assert_eq!(spotify_ids(&page.items), ["user3", "user6"], "ties by id");
    let page = s.list_active(PageRequest::new(4, 2).unwrap(), live()).await.unwrap();
    assert_eq!(spotify_ids(&page.items), ["user1"]);
    let past = s.list_active(PageRequest::new(10, 2).unwrap(), live()).await.unwrap();
    assert!(past.items.is_empty());
    assert_eq!(past.total, 5);
    let back = s.set_active(uid(2), true, NOW.plus(secs(200))).await.unwrap();
    assert!(back.is_active);
    assert_eq!(back.last_active, NOW.plus(secs(200)));
    let page = s.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
    assert_eq!(spotify_ids(&page.items), ["user2", "user5", "user4", "user3", "user6", "user1"]);
    assert_eq!(s.set_active(uid(99), true, NOW).await.unwrap_err(), RepoError::NotFound);
}

/// `record_subscription` writes all four fields; `NotFound` for an unknown id.
pub async fn user_subscription_is_recorded<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    let u = s.insert(new_user(1, PremiumStatus::Unknown)).await.unwrap();
    let sub = Subscription {
        status: PremiumStatus::Free,
        product: None,
        source: PremiumSource::PlayerProbe,
        checked_at: Some(NOW.plus(secs(5))),
    };
    assert_eq!(s.record_subscription(u.id, sub.clone()).await.unwrap().subscription, sub);
    assert_eq!(s.get(u.id).await.unwrap().unwrap().subscription, sub);
    let premium = Subscription {
        status: PremiumStatus::Premium,
        product: Some("premium".into()),
        source: PremiumSource::PlaybackSdk,
        checked_at: Some(NOW.plus(secs(6))),
    };
    assert_eq!(s.record_subscription(u.id, premium.clone()).await.unwrap().subscription, premium);
    assert_eq!(s.record_subscription(uid(99), sub).await.unwrap_err(), RepoError::NotFound);
}

/// `touch` sets `last_active` (millisecond precision) and nothing else; `NotFound` for unknown ids.
pub async fn user_touch_sets_last_active<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let u = r.users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    let later = NOW.plus(Duration::from_millis(61_789));
    r.users.touch(u.id, later).await.unwrap();
    let after = r.users.get(u.id).await.unwrap().unwrap();
    assert_eq!(after.last_active, later);
    assert_eq!(after.created_at, u.created_at);
    assert_eq!(r.tokens.load_tokens(u.id).await.unwrap().unwrap().version, TokenVersion(1), "touch is no token write");
    assert_eq!(r.users.touch(uid(99), NOW).await.unwrap_err(), RepoError::NotFound);
}

/// Every write that returns the user returns it exactly as a later `get` reads it (read back
/// in the write's own transaction, not from another connection afterwards).
pub async fn user_writes_return_the_row_as_get_reads_it<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    let inserted = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    assert_eq!(Some(&inserted), s.get(inserted.id).await.unwrap().as_ref(), "insert");
    let relogin = new_user(1, PremiumStatus::Free);
    let update = LoginUpdate {
        spotify_id: SpotifyUserId::new("renamed").unwrap(),
        display_name: Some(DisplayName::new("Renamed").unwrap()),
        subscription: relogin.subscription,
        tokens: relogin.tokens,
        now: NOW.plus(Duration::from_millis(1_234)),
    };
    let updated = s.update_on_login(inserted.id, update).await.unwrap();
    assert_eq!(Some(&updated), s.get(inserted.id).await.unwrap().as_ref(), "update_on_login");
    let toggled = s.set_active(inserted.id, false, NOW.plus(Duration::from_millis(2_345))).await.unwrap();
    assert_eq!(Some(&toggled), s.get(inserted.id).await.unwrap().as_ref(), "set_active");
    let sub = Subscription::unknown();
    let recorded = s.record_subscription(inserted.id, sub).await.unwrap();
    assert_eq!(Some(&recorded), s.get(inserted.id).await.unwrap().as_ref(), "record_subscription");
}

/// `list_active`'s total is the number of items across all its pages.
pub async fn user_active_total_counts_the_items_of_every_page<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    for n in 1..=7u8 {
        s.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    sign_in(&f.repositories(), 1..=7).await;
    s.set_active(uid(4), false, NOW).await.unwrap();
    for limit in [1, 2, 3, 6, 100] {
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = s.list_active(PageRequest::new(offset, limit).unwrap(), live()).await.unwrap();
            assert_eq!(page.total, 6, "limit {limit}, offset {offset}");
            if page.items.is_empty() {
                break;
            }
            seen.extend(page.items.into_iter().map(|u| u.id));
            offset += limit;
        }
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!((seen.len(), distinct.len()), (6, 6), "limit {limit}: every active user once");
    }
}

/// While other writers toggle users, every `list_active` answer is one snapshot: a page that
/// holds every active user has exactly `total` items.
pub async fn user_active_total_and_page_come_from_one_snapshot<F: StoreFixture>(f: &F) {
    let s = f.repositories().users;
    for n in 1..=8u8 {
        s.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    sign_in(&f.repositories(), 1..=8).await;
    let toggler = {
        let s = s.clone();
        tokio::spawn(async move {
            for i in 0..60u64 {
                let n = u8::try_from(i % 8).unwrap() + 1;
                s.set_active(uid(n), i % 2 == 1, NOW.plus(secs(i))).await.unwrap();
            }
        })
    };
    for _ in 0..60 {
        let page = s.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
        assert_eq!(page.items.len() as u64, page.total, "total and page from one snapshot");
        assert!(page.items.iter().all(|u| u.is_active));
    }
    toggler.await.unwrap();
}

/// A caller that gives up on a write (a cancelled request) neither cuts it short nor leaves
/// the store unable to write: the write completes whole, and later writes work.
pub async fn write_whose_caller_goes_away_still_completes_whole<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    for n in 1..=10u8 {
        let insert = r.users.insert(new_user(n, PremiumStatus::Premium));
        let _ = tokio::time::timeout(Duration::from_micros(1), insert).await;
    }
    let last = r.users.insert(new_user(11, PremiumStatus::Premium)).await.unwrap();
    assert_eq!(
        r.tokens.store_refreshed(last.id, TokenVersion(1), refreshed("b", None)).await.unwrap(),
        TokenVersion(2)
    );
    let mut written = 0;
    for _ in 0..200 {
        written = 0;
        for n in 1..=10u8 {
            written += usize::from(r.users.get(uid(n)).await.unwrap().is_some());
        }
        if written == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(written, 10, "every abandoned insert ran to its end");
    for n in 1..=10u8 {
        let tokens = r.tokens.load_tokens(uid(n)).await.unwrap().unwrap();
        assert_eq!(tokens.version, TokenVersion(1), "user {n} written whole");
    }
}

/// Reads abandoned at any point (a client gone, a sibling extractor failing) leave the store
/// answering every later read with its own row: no connection goes back to the pool holding
/// an unread answer.
pub async fn read_whose_caller_goes_away_leaves_every_later_answer_right<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    for n in 1..=4u8 {
        r.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    sign_in(&r, 1..=4).await;
    for round in 0..40u64 {
        let n = (round % 4) as u8 + 1;
        let abandoned = async {
            r.users.get(uid(n)).await.unwrap();
            r.users.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
        };
        let _ = tokio::time::timeout(Duration::from_micros(round * 25), abandoned).await;
        let user = r.users.get(uid(n)).await.unwrap().unwrap();
        assert_eq!(user.id, uid(n), "round {round}: the answer is this read's own");
        assert_eq!(r.users.get(uid(9)).await.unwrap(), None, "round {round}");
        let page = r.users.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
        assert_eq!((page.total, page.items.len()), (4, 4), "round {round}");
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// The token columns hold ciphertext (no plaintext in the raw columns) that round-trips and
/// decrypts for its row; version 1 after insert; `NotFound` for an unknown id.
pub async fn token_columns_hold_ciphertext_that_round_trips<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let u = r.users.insert(new_user(7, PremiumStatus::Premium)).await.unwrap();
    let raw = |column: &str| format!("SELECT {column} AS v FROM spotify_users WHERE id = '{}'", u.id);
    let access = f.raw_bytes(&raw("access_token")).await.remove(0).unwrap();
    let refresh = f.raw_bytes(&raw("refresh_token")).await.remove(0).unwrap();
    assert!(!access.windows(4).any(|w| w == b"AT-7"), "no plaintext access token in the table");
    assert!(!refresh.windows(4).any(|w| w == b"RT-7"), "no plaintext refresh token in the table");
    let t = r.tokens.load_tokens(u.id).await.unwrap().unwrap();
    assert_eq!((t.access_token.as_bytes(), t.refresh_token.as_bytes()), (&access[..], &refresh[..]));
    let c = keyring();
    assert_eq!(
        c.decrypt(&t.access_token, TokenBinding { user_id: u.id, column: TokenColumn::Access }).unwrap().expose(),
        "AT-7"
    );
    assert_eq!(
        c.decrypt(&t.refresh_token, TokenBinding { user_id: u.id, column: TokenColumn::Refresh }).unwrap().expose(),
        "RT-7"
    );
    assert_eq!(t.version, TokenVersion(1));
    assert!(!t.reauth_required);
    assert_eq!(t.scopes.to_string(), "streaming user-read-email user-read-private");
    assert_eq!(t.access_expires_at, NOW.plus(secs(3600)));
    assert_eq!(t.refresh_expires_at, NOW.plus(secs(184 * 86400)));
    assert_eq!(r.tokens.load_tokens(uid(99)).await.unwrap_err(), RepoError::NotFound);
}

/// `store_refreshed` is a compare-and-swap on the version: it bumps it, keeps the refresh token
/// when given `None`, never extends the refresh expiry; a stale writer writes nothing.
pub async fn token_refresh_write_is_guarded_and_keeps_the_refresh_token_unless_replaced<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let s = r.tokens;
    let u = r.users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    let before = s.load_tokens(u.id).await.unwrap().unwrap();

    assert_eq!(s.store_refreshed(u.id, TokenVersion(1), refreshed("a", None)).await.unwrap(), TokenVersion(2));
    let t = s.load_tokens(u.id).await.unwrap().unwrap();
    assert_eq!(t.access_token.as_bytes(), b"AT-a");
    assert_eq!(t.refresh_token, before.refresh_token, "no refresh_token in the response: the old one stays");
    assert_eq!(t.access_expires_at, NOW.plus(secs(7200)));
    assert_eq!(t.refresh_expires_at, before.refresh_expires_at, "a refresh never extends the 6 months");
    assert_eq!(t.scopes.to_string(), "streaming");
    assert_eq!(t.version, TokenVersion(2));

    // A writer that read version 1 lost the race: nothing is written.
    assert_eq!(
        s.store_refreshed(u.id, TokenVersion(1), refreshed("stale", Some("RT-stale"))).await.unwrap_err(),
        RepoError::StaleVersion
    );
    assert_eq!(s.load_tokens(u.id).await.unwrap().unwrap(), t);

    s.store_refreshed(u.id, TokenVersion(2), refreshed("b", Some("RT-b"))).await.unwrap();
    let t = s.load_tokens(u.id).await.unwrap().unwrap();
    assert_eq!(
        (t.access_token.as_bytes(), t.refresh_token.as_bytes(), t.version),
        (&b"AT-b"[..], &b"RT-b"[..], TokenVersion(3))
    );
    assert_eq!(
        s.store_refreshed(uid(99), TokenVersion(1), refreshed("x", None)).await.unwrap_err(),
        RepoError::NotFound
    );
}

/// 16 concurrent `store_refreshed` naming one version: exactly one wins, the others get
/// `StaleVersion`, and the stored pair comes from the winner (never half-written).
pub async fn token_concurrent_refresh_writes_exactly_one_wins<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let store = r.tokens;
    let u = r.users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.store_refreshed(u.id, TokenVersion(1), refreshed(&i.to_string(), Some(&format!("RT-{i}")))).await
        }));
    }
    let mut wins = Vec::new();
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            Ok(v) => wins.push((i, v)),
            Err(e) => assert_eq!(e, RepoError::StaleVersion),
        }
    }
    assert_eq!(wins.len(), 1, "exactly one concurrent writer wins");
    let t = store.load_tokens(u.id).await.unwrap().unwrap();
    let (i, v) = wins[0];
    assert_eq!((t.version, v), (TokenVersion(2), TokenVersion(2)));
    // Access and refresh token come from the same writer: never half-written.
    assert_eq!(t.access_token.as_bytes(), format!("AT-{i}").as_bytes());
    assert_eq!(t.refresh_token.as_bytes(), format!("RT-{i}").as_bytes());
}

/// `mark_reauth_required` is guarded; `update_on_login` clears it, writes everything and bumps
/// the version; `delete_tokens` is idempotent, and a stale refresh cannot resurrect tokens.
pub async fn token_reauth_mark_update_on_login_delete_and_no_resurrection<F: StoreFixture>(f: &F) {
    let Repositories { users: s, tokens: t, .. } = f.repositories();
    let u = s.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    assert_eq!(t.mark_reauth_required(u.id, TokenVersion(0)).await.unwrap_err(), RepoError::StaleVersion);
    assert_eq!(t.mark_reauth_required(uid(99), TokenVersion(1)).await.unwrap_err(), RepoError::NotFound);
    t.mark_reauth_required(u.id, TokenVersion(1)).await.unwrap();
    let stored = t.load_tokens(u.id).await.unwrap().unwrap();
    assert!(stored.reauth_required);
    assert_eq!(stored.version, TokenVersion(2));
    assert!(s.get(u.id).await.unwrap().unwrap().reauth_required);

    // A lease held at re-login is cleared by it.
    t.try_acquire_refresh_lease(u.id, "old", NOW, secs(600)).await.unwrap();
    s.set_active(u.id, false, NOW).await.unwrap();
    let relogin = new_user(1, PremiumStatus::Free);
    let after = s
        .update_on_login(
            u.id,
            LoginUpdate {
                spotify_id: SpotifyUserId::new("renamed").unwrap(),
                display_name: None,
                subscription: relogin.subscription.clone(),
                tokens: relogin.tokens,
                now: NOW.plus(secs(60)),
            },
        )
        .await
        .unwrap();
    // The opt-out of the active list survives the login.
    assert!(!after.reauth_required && !after.is_active && after.has_tokens && after.display_name.is_none());
    assert_eq!(after.spotify_id.as_str(), "renamed");
    assert_eq!(after.subscription, relogin.subscription);
    assert_eq!(after.created_at, u.created_at);
    assert_eq!(after.last_active, NOW.plus(secs(60)));
    assert_eq!(after.account_key, u.account_key);
    let stored = t.load_tokens(u.id).await.unwrap().unwrap();
    assert!(!stored.reauth_required);
    assert_eq!(stored.version, TokenVersion(3));
    assert_eq!(
        t.try_acquire_refresh_lease(u.id, "new", NOW, secs(10)).await.unwrap(),
        LeaseOutcome::Acquired,
        "a new login clears the refresh lease"
    );

    t.delete_tokens(u.id).await.unwrap();
    t.delete_tokens(u.id).await.unwrap();
    assert_eq!(t.load_tokens(u.id).await.unwrap(), None);
    let gone = s.get(u.id).await.unwrap().unwrap();
    assert!(!gone.has_tokens && !gone.reauth_required);
    assert_eq!(
        t.store_refreshed(u.id, TokenVersion(4), refreshed("x", None)).await.unwrap_err(),
        RepoError::StaleVersion,
        "a refresh that read the last version before the disconnect"
    );
    assert_eq!(
        t.store_refreshed(u.id, TokenVersion(5), refreshed("x", None)).await.unwrap_err(),
        RepoError::StaleVersion,
        "no resurrection after disconnect, whatever the version"
    );
    assert_eq!(t.load_tokens(u.id).await.unwrap(), None);
    assert_eq!(t.delete_tokens(uid(99)).await.unwrap_err(), RepoError::NotFound);
    let bad = s
        .update_on_login(
            uid(99),
            LoginUpdate {
                spotify_id: SpotifyUserId::new("x").unwrap(),
                display_name: None,
                subscription: Subscription::unknown(),
                tokens: new_user(9, PremiumStatus::Free).tokens,
                now: NOW,
            },
        )
        .await;
    assert_eq!(bad.unwrap_err(), RepoError::NotFound);
}

/// The refresh lease: exclusive until its end (`now + ttl`), re-entrant for its holder (which
/// extends it), lapses at its end exactly, release only by the holder (idempotent otherwise);
/// `NotFound` for an unknown id.
pub async fn token_refresh_lease_excludes_others_until_released_or_expired<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let s = r.tokens;
    let u = r.users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    let ttl = secs(10);
    let ms = Duration::from_millis;
    assert_eq!(s.try_acquire_refresh_lease(u.id, "a", NOW, ttl).await.unwrap(), LeaseOutcome::Acquired);
    assert_eq!(s.try_acquire_refresh_lease(u.id, "b", NOW.plus(secs(1)), ttl).await.unwrap(), LeaseOutcome::Busy);
    // Re-entrant for the holder, extending it to NOW + 12 s.
    assert_eq!(s.try_acquire_refresh_lease(u.id, "a", NOW.plus(secs(2)), ttl).await.unwrap(), LeaseOutcome::Acquired);
    assert_eq!(s.try_acquire_refresh_lease(u.id, "b", NOW.plus(secs(11)), ttl).await.unwrap(), LeaseOutcome::Busy);
    assert_eq!(
        s.try_acquire_refresh_lease(u.id, "b", NOW.plus(secs(12)).minus(ms(1)), ttl).await.unwrap(),
        LeaseOutcome::Busy,
        "live until its end"
    );
    // A crashed holder's lease lapses (at its end exactly); b's runs to NOW + 22 s.
    assert_eq!(s.try_acquire_refresh_lease(u.id, "b", NOW.plus(secs(12)), ttl).await.unwrap(), LeaseOutcome::Acquired);
    s.release_refresh_lease(u.id, "a").await.unwrap(); // not the holder: no effect
    assert_eq!(s.try_acquire_refresh_lease(u.id, "c", NOW.plus(secs(14)), ttl).await.unwrap(), LeaseOutcome::Busy);
    assert_eq!(
        s.try_acquire_refresh_lease(u.id, "c", NOW.plus(secs(22)).minus(ms(1)), ttl).await.unwrap(),
        LeaseOutcome::Busy
    );
    s.release_refresh_lease(u.id, "b").await.unwrap();
    s.release_refresh_lease(u.id, "b").await.unwrap(); // idempotent
    assert_eq!(s.try_acquire_refresh_lease(u.id, "c", NOW.plus(secs(14)), ttl).await.unwrap(), LeaseOutcome::Acquired);
    assert_eq!(s.load_tokens(u.id).await.unwrap().unwrap().version, TokenVersion(1), "leases are no token write");
    assert_eq!(s.try_acquire_refresh_lease(uid(99), "a", NOW, ttl).await.unwrap_err(), RepoError::NotFound);
    s.release_refresh_lease(uid(99), "a").await.unwrap();
}

/// 16 concurrent acquirers of one free lease: exactly one gets it.
pub async fn token_concurrent_lease_requests_grant_exactly_one<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let store = r.tokens;
    let u = r.users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.try_acquire_refresh_lease(u.id, &format!("h{i}"), NOW, secs(30)).await })
        })
        .collect();
    let mut acquired = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            LeaseOutcome::Acquired => acquired += 1,
            LeaseOutcome::Busy => {}
        }
    }
    assert_eq!(acquired, 1);
    // Whoever holds it, it runs to NOW + 30 s.
    assert_eq!(
        store.try_acquire_refresh_lease(u.id, "late", NOW.plus(secs(29)), secs(30)).await.unwrap(),
        LeaseOutcome::Busy
    );
    assert_eq!(
        store.try_acquire_refresh_lease(u.id, "late", NOW.plus(secs(30)), secs(30)).await.unwrap(),
        LeaseOutcome::Acquired
    );
}

/// The proactive refresher's query: signed-in users (a live session; opted out of the list or
/// not) with tokens, not needing re-authorization, whose access token expires before the
/// cutoff, soonest first, at most `limit`. Nobody without a live session.
pub async fn token_refresh_candidates_are_expiring_connected_signed_in_users<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let Repositories { users: s, tokens: t, .. } = r.clone();
    // Access tokens expire at NOW + n minutes for user n.
    for n in 1..=7u8 {
        let mut u = new_user(n, PremiumStatus::Premium);
        u.tokens.access_expires_at = NOW.plus(secs(60 * u64::from(n)));
        s.insert(u).await.unwrap();
    }
    sign_in(&r, 1..=6).await;
    // User 7 signed in once, but that session is revoked: not signed in.
    r.sessions.create(new_session(7, 7)).await.unwrap();
    r.sessions.revoke(SessionId::from_bytes([7; 16]), NOW.minus(secs(1))).await.unwrap();
    s.set_active(uid(2), false, NOW).await.unwrap();
    t.mark_reauth_required(uid(3), TokenVersion(1)).await.unwrap();
    t.delete_tokens(uid(4)).await.unwrap();
    let cutoff = NOW.plus(secs(60 * 6));
    assert_eq!(
        t.list_refresh_candidates(cutoff, live(), 10).await.unwrap(),
        vec![uid(1), uid(2), uid(5)],
        "soonest first; 6 is at the cutoff"
    );
    let all = vec![uid(1), uid(2), uid(5), uid(6)];
    assert_eq!(t.list_refresh_candidates(NOW.plus(secs(3600)), live(), 10).await.unwrap(), all, "never 7");
    assert_eq!(t.list_refresh_candidates(cutoff.plus(secs(1)), live(), 2).await.unwrap(), vec![uid(1), uid(2)]);
    assert!(t.list_refresh_candidates(NOW, live(), 10).await.unwrap().is_empty());
    // A day later every session has lapsed: nobody is signed in, nobody is refreshed.
    let tomorrow = SessionPolicy::default().live_after(NOW.plus(secs(86400)));
    assert!(t.list_refresh_candidates(NOW.plus(secs(90000)), tomorrow, 10).await.unwrap().is_empty());
}

/// Who is listed: only users with a session live now (not revoked, not past its end, not idle
/// past the timeout) who have not opted out; an opt-out survives a later login.
pub async fn user_active_list_shows_only_people_signed_in_who_did_not_opt_out<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    for n in 1..=6u8 {
        r.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    let policy = SessionPolicy::default();
    // 1: live. 2: no session at all. 3: revoked. 4: past its absolute end. 5: idle too long.
    // 6: live but opted out.
    sign_in(&r, [1, 3, 6]).await;
    r.sessions.revoke(SessionId::from_bytes([3; 16]), NOW).await.unwrap();
    let mut ended = new_session(4, 4);
    ended.expires_at = NOW;
    r.sessions.create(ended).await.unwrap();
    let mut idle = new_session(5, 5);
    idle.created_at = NOW.minus(policy.idle_timeout).minus(secs(1));
    r.sessions.create(idle).await.unwrap();
    r.users.set_active(uid(6), false, NOW).await.unwrap();
    let listed = |page: spotauth_domain::user::Page<spotauth_domain::user::User>| {
        page.items.iter().map(|u| u.id).collect::<Vec<_>>()
    };
    let page = r.users.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
    assert_eq!((listed(page.clone()), page.total), (vec![uid(1)], 1));
    // The same rule in the domain.
    for n in 1..=5u8 {
        if let Some(session) = session_of(&r.sessions, SessionId::from_bytes([n; 16])).await {
            assert_eq!(session.is_live(live()), n == 1, "session {n}");
        }
    }
    // User 6 logs in again: still opted out.
    let again = new_user(6, PremiumStatus::Premium);
    let update = LoginUpdate {
        spotify_id: again.spotify_id,
        display_name: again.display_name,
        subscription: again.subscription,
        tokens: again.tokens,
        now: NOW.plus(secs(1)),
    };
    assert!(!r.users.update_on_login(uid(6), update).await.unwrap().is_active, "the opt-out survives a login");
    let page = r.users.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
    assert_eq!(listed(page.clone()), vec![uid(1)]);
    // Everyone present in one read: the same people, in the same order.
    sign_in(&r, [2]).await;
    let page = r.users.list_active(PageRequest::new(0, 100).unwrap(), live()).await.unwrap();
    let present: Vec<UserId> = r.users.list_present(live()).await.unwrap().iter().map(|u| u.id).collect();
    assert_eq!(present.len(), 2);
    assert_eq!(present, listed(page), "list_present lists as list_active does");
}

/// The token lifecycle: a user with tokens, inactive since before the cutoff and without any
/// session live after it, loses the tokens (version bumped); everyone else keeps theirs.
pub async fn token_idle_users_lose_their_tokens_after_the_retention<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let policy = SessionPolicy::default();
    let later = NOW.plus(secs(40 * 86400));
    let cutoff = policy.live_after(later.minus(secs(30 * 86400)));
    // 1: signed in a day only (ended long before the cutoff). 2: never signed in.
    // 3: a session that lasts past the cutoff. 4: active recently (a login at `later`).
    // 5: no tokens.
    for n in 1..=5u8 {
        r.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    sign_in(&r, [1]).await;
    let mut long = new_session(3, 3);
    long.expires_at = NOW.plus(secs(35 * 86400));
    long.token_expires_at = long.expires_at;
    r.sessions.create(long).await.unwrap();
    r.sessions.touch(SessionId::from_bytes([3; 16]), NOW.plus(secs(9 * 86400))).await.unwrap();
    r.users.touch(uid(4), later).await.unwrap();
    r.tokens.delete_tokens(uid(5)).await.unwrap();
    assert_eq!(r.tokens.delete_tokens_of_idle_users(cutoff).await.unwrap(), 2);
    for (n, kept) in [(1, false), (2, false), (3, true), (4, true), (5, false)] {
        assert_eq!(r.tokens.load_tokens(uid(n)).await.unwrap().is_some(), kept, "user {n}");
    }
    assert_eq!(r.users.get(uid(1)).await.unwrap().map(|u| u.has_tokens), Some(false));
    assert_eq!(r.tokens.delete_tokens_of_idle_users(cutoff).await.unwrap(), 0, "idempotent");
    // A refresh that read the deleted row can no longer write it back.
    assert_eq!(
        r.tokens.store_refreshed(uid(1), TokenVersion(1), refreshed("late", None)).await.unwrap_err(),
        RepoError::StaleVersion
    );
}

// ---------------------------------------------------------------------------------------------
// The shared rate-limit backoff
// ---------------------------------------------------------------------------------------------

/// The backoff is per client id, starts absent, and only ever moves later.
pub async fn rate_limit_backoff_only_ever_extends<F: StoreFixture>(f: &F) {
    let r = f.repositories().rate_limits;
    assert_eq!(r.backoff_until("client-a").await.unwrap(), None);
    assert_eq!(r.extend_backoff("client-a", NOW.plus(secs(30)), NOW).await.unwrap(), NOW.plus(secs(30)));
    assert_eq!(
        r.extend_backoff("client-a", NOW.plus(secs(10)), NOW.plus(secs(1))).await.unwrap(),
        NOW.plus(secs(30)),
        "never shortened"
    );
    assert_eq!(r.backoff_until("client-a").await.unwrap(), Some(NOW.plus(secs(30))));
    assert_eq!(r.extend_backoff("client-a", NOW.plus(secs(90)), NOW.plus(secs(2))).await.unwrap(), NOW.plus(secs(90)));
    assert_eq!(r.backoff_until("client-b").await.unwrap(), None, "per client id");
}

/// Instances recording 429s at once: the longest backoff wins.
pub async fn rate_limit_concurrent_extensions_keep_the_longest<F: StoreFixture>(f: &F) {
    let r = f.repositories().rate_limits;
    let tasks: Vec<_> = (1..=16u64)
        .map(|i| {
            let r = r.clone();
            tokio::spawn(async move { r.extend_backoff("client-a", NOW.plus(secs(i)), NOW).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(r.backoff_until("client-a").await.unwrap(), Some(NOW.plus(secs(16))));
}

// ---------------------------------------------------------------------------------------------
// Sessions
// ---------------------------------------------------------------------------------------------

/// Create, read, `Conflict(SessionId)` and `Conflict(TokenIdHash)`, rotation as
/// compare-and-swap, touch, idempotent revoke keeping the first revocation time, and no
/// rotation of a revoked session.
pub async fn session_create_get_rotate_touch_revoke<F: StoreFixture>(f: &F) {
    let s = f.repositories().sessions;
    let created = s.create(new_session(1, 1)).await.unwrap();
    assert_eq!(created.id, SessionId::from_bytes([1; 16]));
    assert_eq!(created.user_id, uid(1));
    assert_eq!((created.created_at, created.last_active), (NOW, NOW));
    assert_eq!(created.expires_at, NOW.plus(secs(86400)));
    assert_eq!(created.revoked_at, None);
    assert_eq!(created.meta.user_agent.as_deref(), Some("Mozilla/5.0 (X11)"));
    assert_eq!(created.meta.ip_address.as_deref(), Some("2001:db8::1"));
    assert_eq!(session_of(&s, created.id).await, Some(created.clone()));
    assert_eq!(session_of(&s, SessionId::from_bytes([9; 16])).await, None);
    assert_eq!(s.create(new_session(1, 1)).await.unwrap_err(), RepoError::Conflict(UniqueKey::SessionId));
    let mut same_hash = new_session(5, 1);
    same_hash.token_id_hash = hash(1);
    assert_eq!(s.create(same_hash).await.unwrap_err(), RepoError::Conflict(UniqueKey::TokenIdHash));
    assert_eq!(session_of(&s, SessionId::from_bytes([5; 16])).await, None, "nothing written on conflict");
    let mut bare = new_session(2, 1);
    bare.meta = SessionMeta::default();
    assert_eq!(s.create(bare).await.unwrap().meta, SessionMeta::default());

    let later = NOW.plus(secs(5));
    assert_eq!((created.previous_token_id_hash.clone(), created.rotated_at), (None, None));
    let rotated = s.rotate(created.id, &hash(1), &hash(3), later, later.plus(secs(3600))).await.unwrap();
    assert_eq!((rotated.token_id_hash.clone(), rotated.last_active), (hash(3), later));
    assert_eq!((rotated.previous_token_id_hash.clone(), rotated.rotated_at), (Some(hash(1)), Some(later)));
    assert_eq!(rotated.token_expires_at, Some(later.plus(secs(3600))), "the new token's expiry");
    assert_eq!(session_of(&s, created.id).await, Some(rotated));
    // The old hash no longer rotates: reuse or a lost race.
    assert_eq!(
        s.rotate(created.id, &hash(1), &hash(4), later, later.plus(secs(3600))).await.unwrap_err(),
        RepoError::StaleVersion
    );
    assert_eq!(session_of(&s, created.id).await.unwrap().token_id_hash, hash(3), "nothing written");
    assert_eq!(
        s.rotate(SessionId::from_bytes([9; 16]), &hash(1), &hash(4), later, later).await.unwrap_err(),
        RepoError::NotFound
    );

    s.touch(created.id, later.plus(secs(1))).await.unwrap();
    assert_eq!(session_of(&s, created.id).await.unwrap().last_active, later.plus(secs(1)));
    assert_eq!(s.touch(SessionId::from_bytes([9; 16]), later).await.unwrap_err(), RepoError::NotFound);
    s.revoke(created.id, later).await.unwrap();
    s.revoke(created.id, later.plus(secs(9))).await.unwrap();
    s.revoke(SessionId::from_bytes([9; 16]), later).await.unwrap();
    assert_eq!(session_of(&s, created.id).await.unwrap().revoked_at, Some(later), "first revocation time kept");
    s.touch(created.id, later.plus(secs(2))).await.unwrap(); // revoked: Ok, no resurrection
    assert_eq!(session_of(&s, created.id).await.unwrap().revoked_at, Some(later));
    assert_eq!(
        s.rotate(created.id, &hash(3), &hash(4), later, later.plus(secs(3600))).await.unwrap_err(),
        RepoError::StaleVersion,
        "revoked sessions don't rotate"
    );
}

/// 16 concurrent rotations from one hash: exactly one wins, the rest get `StaleVersion`.
pub async fn session_concurrent_rotation_has_one_winner<F: StoreFixture>(f: &F) {
    let store = f.repositories().sessions;
    let sid = store.create(new_session(1, 1)).await.unwrap().id;
    let tasks: Vec<_> = (10..26u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store.rotate(sid, &hash(1), &hash(i), NOW, NOW.plus(secs(3600))).await.map(|s| (i, s))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok((i, s)) => winners.push((i, s)),
            Err(e) => assert_eq!(e, RepoError::StaleVersion),
        }
    }
    assert_eq!(winners.len(), 1);
    let (i, _) = winners[0];
    assert_eq!(session_of(&store, sid).await.unwrap().token_id_hash, hash(i));
}

/// `revoke_all_for_user` revokes every unrevoked session of that user and counts the live ones; `purge_ended` deletes
/// the sessions not live after the cutoff: revoked, past their absolute end, idle past the
/// timeout or with their token expired before it; a session live at the cutoff stays.
pub async fn session_revoke_all_and_purge<F: StoreFixture>(f: &F) {
    let s = f.repositories().sessions;
    let ended_before = |t: Timestamp| SessionPolicy::default().live_after(t);
    let revoked_at = NOW.plus(secs(10));
    for (id, user) in [(1, 1), (2, 1), (3, 2)] {
        s.create(new_session(id, user)).await.unwrap();
    }
    // User 1 also has a session that lapsed on its own (its token expired): revoked too, so a
    // rotation in flight cannot revive it, but not counted as ended by this logout.
    let mut lapsed_one = new_session(6, 1);
    lapsed_one.token_expires_at = revoked_at;
    s.create(lapsed_one).await.unwrap();
    assert_eq!(s.revoke_all_for_user(uid(1), ended_before(revoked_at), None).await.unwrap(), 2);
    let lapsed_id = SessionId::from_bytes([6; 16]);
    assert_eq!(session_of(&s, lapsed_id).await.unwrap().revoked_at, Some(revoked_at));
    assert_eq!(
        s.rotate(lapsed_id, &hash(6), &hash(7), revoked_at, revoked_at.plus(secs(60))).await.unwrap_err(),
        RepoError::StaleVersion,
        "a rotation that verified the token before the logout finds it revoked"
    );
    assert_eq!(s.revoke_all_for_user(uid(1), ended_before(revoked_at), None).await.unwrap(), 0);
    assert_eq!(s.revoke_all_for_user(uid(7), ended_before(revoked_at), None).await.unwrap(), 0);
    assert!(session_of(&s, SessionId::from_bytes([3; 16])).await.unwrap().revoked_at.is_none());
    assert_eq!(s.purge_ended(ended_before(NOW.plus(secs(9)))).await.unwrap(), 0, "still live then");
    assert_eq!(s.purge_ended(ended_before(revoked_at)).await.unwrap(), 3, "revoked or lapsed by the cutoff");
    assert_eq!(session_of(&s, SessionId::from_bytes([1; 16])).await, None);
    let end = NOW.plus(secs(86400));
    assert_eq!(s.purge_ended(ended_before(end.minus(secs(1)))).await.unwrap(), 0, "live until its end");
    assert_eq!(s.purge_ended(ended_before(end)).await.unwrap(), 1, "past its token's expiry and its end");
    // A session that went idle, and one whose token expired, are over as well.
    let policy = SessionPolicy::default();
    let mut idle = new_session(4, 3);
    idle.expires_at = NOW.plus(secs(30 * 86400));
    idle.token_expires_at = idle.expires_at;
    s.create(idle).await.unwrap();
    let mut lapsed = new_session(5, 3);
    lapsed.expires_at = NOW.plus(secs(30 * 86400));
    lapsed.token_expires_at = NOW.plus(secs(3600));
    s.create(lapsed).await.unwrap();
    assert_eq!(s.purge_ended(ended_before(NOW.plus(secs(3599)))).await.unwrap(), 0);
    assert_eq!(s.purge_ended(ended_before(NOW.plus(secs(3600)))).await.unwrap(), 1, "its token expired");
    let idled_out = NOW.plus(policy.idle_timeout).plus(Duration::from_millis(1));
    assert_eq!(s.purge_ended(ended_before(idled_out)).await.unwrap(), 1, "unused past the idle timeout");
}

/// `list_for_user` lists the user's live sessions, most recently used first; `revoke_all_for_user`
/// with `keep` spares that one session ("log out of all other devices").
pub async fn session_list_for_user_and_revoke_all_but_one<F: StoreFixture>(f: &F) {
    let s = f.repositories().sessions;
    let sid = |n: u8| SessionId::from_bytes([n; 16]);
    for (id, user) in [(1, 1), (2, 1), (3, 2)] {
        s.create(new_session(id, user)).await.unwrap();
    }
    let mut lapsed = new_session(4, 1);
    lapsed.token_expires_at = NOW;
    s.create(lapsed).await.unwrap();
    s.touch(sid(2), NOW.plus(secs(5))).await.unwrap();
    let listed = s.list_for_user(uid(1), live()).await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), [sid(2), sid(1)], "live ones, last used first");
    assert_eq!(listed[1].meta, new_session(1, 1).meta, "read back whole");
    assert_eq!(listed[1], session_of(&s, sid(1)).await.unwrap(), "as load_view reads it");
    assert!(s.list_for_user(uid(9), live()).await.unwrap().is_empty());

    assert_eq!(s.revoke_all_for_user(uid(1), live(), Some(sid(2))).await.unwrap(), 1, "all but the kept one");
    assert!(session_of(&s, sid(1)).await.unwrap().revoked_at.is_some());
    assert!(session_of(&s, sid(4)).await.unwrap().revoked_at.is_some(), "the lapsed one too");
    assert!(session_of(&s, sid(2)).await.unwrap().revoked_at.is_none());
    assert!(session_of(&s, sid(3)).await.unwrap().revoked_at.is_none(), "another user's");
    let listed = s.list_for_user(uid(1), live()).await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id).collect::<Vec<_>>(), [sid(2)]);
    assert_eq!(s.revoke_all_for_user(uid(1), live(), Some(sid(3))).await.unwrap(), 1, "keeping another's keeps none");
    assert!(s.list_for_user(uid(1), live()).await.unwrap().is_empty());
}

/// The hot-path read: a session with its owner and the owner's tokens; the owner as
/// `UserRepository::get` and the tokens as `TokenRepository::load_tokens` return them, `None`
/// tokens when the user has none, `None` owner when the user row is gone, and `None` overall
/// for an unknown session.
pub async fn session_load_view_reads_the_owner_in_one_call<F: StoreFixture>(f: &F) {
    let Repositories { users, tokens: token_store, sessions, .. } = f.repositories();
    let owner = users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    let tokens = token_store.load_tokens(owner.id).await.unwrap();
    assert!(tokens.is_some());
    let live = sessions.create(new_session(1, 1)).await.unwrap();
    let orphan = sessions.create(new_session(2, 9)).await.unwrap();
    assert_eq!(
        sessions.load_view(live.id, Freshness::Latest).await.unwrap(),
        Some(SessionView { session: live.clone(), owner: Some(SessionOwner { user: owner.clone(), tokens }) })
    );
    assert_eq!(
        sessions.load_view(orphan.id, Freshness::Latest).await.unwrap(),
        Some(SessionView { session: orphan, owner: None })
    );
    assert_eq!(sessions.load_view(SessionId::from_bytes([7; 16]), Freshness::Latest).await.unwrap(), None);
    sessions.revoke(live.id, NOW).await.unwrap();
    token_store.delete_tokens(owner.id).await.unwrap();
    let view = sessions.load_view(live.id, Freshness::Latest).await.unwrap().unwrap();
    assert_eq!(view.session.revoked_at, Some(NOW));
    let now_owner = view.owner.unwrap();
    assert_eq!(Some(now_owner.user), users.get(owner.id).await.unwrap());
    assert_eq!(now_owner.tokens, None);
}

// ---------------------------------------------------------------------------------------------
// Login flows
// ---------------------------------------------------------------------------------------------

/// A flow is consumed once with its fields; a second consume is `AlreadyUsed`.
pub async fn flow_create_and_consume_once<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    s.create(new_flow("a", Some("/rooms/42?x=1#y"), 600)).await.unwrap();
    s.create(new_flow("b", None, 600)).await.unwrap();
    let at = NOW.plus(secs(30));
    assert_eq!(
        s.consume(&digest("a"), at).await.unwrap(),
        ConsumeOutcome::Consumed(LoginFlow {
            return_to: Some(ReturnTo::new("/rooms/42?x=1#y").unwrap()),
            created_at: NOW,
            expires_at: NOW.plus(secs(600)),
        })
    );
    assert_eq!(s.consume(&digest("a"), at).await.unwrap(), ConsumeOutcome::AlreadyUsed);
    assert_eq!(s.consume(&digest("a"), at.plus(secs(1))).await.unwrap(), ConsumeOutcome::AlreadyUsed);
    assert_eq!(
        s.consume(&digest("b"), at).await.unwrap(),
        ConsumeOutcome::Consumed(LoginFlow { return_to: None, created_at: NOW, expires_at: NOW.plus(secs(600)) })
    );
}

/// A state no flow has is `Unknown`, also one differing only in case.
pub async fn flow_unknown_state<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    assert_eq!(s.consume(&digest("nope"), NOW).await.unwrap(), ConsumeOutcome::Unknown);
    s.create(new_flow("a", None, 600)).await.unwrap();
    let upper = OAuthState::new(state("a").expose().to_uppercase()).unwrap();
    assert_eq!(s.consume(&Sha256Digests.oauth_state(&upper), NOW).await.unwrap(), ConsumeOutcome::Unknown);
    assert!(matches!(s.consume(&digest("a"), NOW).await.unwrap(), ConsumeOutcome::Consumed(_)));
}

/// At or after `expires_at` a flow is `Expired`, used or not, and an expired attempt does not
/// consume it.
pub async fn flow_expired_is_not_consumable<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    s.create(new_flow("a", Some("/"), 600)).await.unwrap();
    assert_eq!(s.consume(&digest("a"), NOW.plus(secs(600))).await.unwrap(), ConsumeOutcome::Expired, "at the end");
    assert_eq!(s.consume(&digest("a"), NOW.plus(secs(601))).await.unwrap(), ConsumeOutcome::Expired);
    // Just before the end it is still live: the expired attempts did not use it.
    assert!(matches!(
        s.consume(&digest("a"), NOW.plus(Duration::from_millis(599_999))).await.unwrap(),
        ConsumeOutcome::Consumed(_)
    ));
    assert_eq!(s.consume(&digest("a"), NOW.plus(secs(700))).await.unwrap(), ConsumeOutcome::Expired, "used, too");
}

/// 16 concurrent consumes of one state: exactly one `Consumed`, the others `AlreadyUsed`.
pub async fn flow_concurrent_consumes_exactly_one<F: StoreFixture>(f: &F) {
    let store = f.repositories().flows;
    store.create(new_flow("race", Some("/after"), 600)).await.unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume(&digest("race"), NOW.plus(secs(1))).await })
        })
        .collect();
    let mut consumed = 0;
    for t in tasks {
        match t.await.unwrap().unwrap() {
            ConsumeOutcome::Consumed(flow) => {
                assert_eq!(flow.return_to.as_ref().map(ReturnTo::as_str), Some("/after"));
                consumed += 1;
            }
            other => assert_eq!(other, ConsumeOutcome::AlreadyUsed),
        }
    }
    assert_eq!(consumed, 1);
}

/// Creating a second flow with one state is `Conflict(State)` and leaves the first intact.
pub async fn flow_duplicate_state_conflicts<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    s.create(new_flow("dup", Some("/first"), 600)).await.unwrap();
    assert_eq!(
        s.create(new_flow("dup", Some("/second"), 900)).await.unwrap_err(),
        RepoError::Conflict(UniqueKey::State)
    );
    match s.consume(&digest("dup"), NOW).await.unwrap() {
        ConsumeOutcome::Consumed(flow) => {
            assert_eq!(flow.return_to.as_ref().map(ReturnTo::as_str), Some("/first"));
            assert_eq!(flow.expires_at, NOW.plus(secs(600)));
        }
        other => panic!("expected Consumed, got {other:?}"),
    }
    assert_eq!(
        s.create(new_flow("dup", None, 600)).await.unwrap_err(),
        RepoError::Conflict(UniqueKey::State),
        "used, too"
    );
}

/// `purge_expired` deletes flows that expired strictly before the cutoff, used or not.
pub async fn flow_purge_expired<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    s.create(new_flow("short", None, 10)).await.unwrap();
    s.create(new_flow("used", None, 10)).await.unwrap();
    s.create(new_flow("long", None, 600)).await.unwrap();
    assert!(matches!(s.consume(&digest("used"), NOW).await.unwrap(), ConsumeOutcome::Consumed(_)));
    assert_eq!(s.purge_expired(NOW.plus(secs(10))).await.unwrap(), 0, "expiring exactly at the cutoff is kept");
    assert_eq!(s.purge_expired(NOW.plus(secs(11))).await.unwrap(), 2);
    assert_eq!(s.consume(&digest("short"), NOW.plus(secs(11))).await.unwrap(), ConsumeOutcome::Unknown);
    assert_eq!(s.purge_expired(NOW.plus(secs(11))).await.unwrap(), 0);
    assert!(matches!(s.consume(&digest("long"), NOW.plus(secs(11))).await.unwrap(), ConsumeOutcome::Consumed(_)));
    assert_eq!(s.purge_expired(NOW.plus(secs(3600))).await.unwrap(), 1);
}

/// The stored key of a flow is the 32-byte digest the crypto port made, not the state.
pub async fn flow_state_is_stored_only_as_a_digest<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    s.create(new_flow("secret", None, 600)).await.unwrap();
    let keys: Vec<Vec<u8>> =
        f.raw_bytes("SELECT state_hash AS v FROM oauth_login_flows").await.into_iter().map(Option::unwrap).collect();
    assert_eq!(keys, [digest("secret").as_bytes().to_vec()]);
    let st = state("secret");
    assert!(!keys[0].windows(8).any(|w| st.expose().as_bytes().windows(8).any(|x| x == w)), "no part of the state");
}

/// Pending flows (unused, not lapsed) are counted for one client and for everyone.
pub async fn flow_pending_logins_are_counted_per_client_and_in_all<F: StoreFixture>(f: &F) {
    let s = f.repositories().flows;
    let here = ClientKey::from_ip("203.0.113.5".parse().unwrap());
    let there = ClientKey::from_ip("2001:db8:1:2::7".parse().unwrap());
    for (tag, client, ttl) in [
        ("a", Some(&here), 600),
        ("b", Some(&here), 600),
        ("c", Some(&here), 10),
        ("d", Some(&there), 600),
        ("e", None, 600),
    ] {
        let mut flow = new_flow(tag, None, ttl);
        flow.client = client.cloned();
        s.create(flow).await.unwrap();
    }
    let count = |client: Option<&ClientKey>, at| s.count_pending(client.cloned(), at);
    assert_eq!(count(Some(&here), NOW).await.unwrap(), PendingLogins { client: 3, total: 5 });
    assert!(matches!(s.consume(&digest("a"), NOW).await.unwrap(), ConsumeOutcome::Consumed(_)));
    let later = NOW.plus(secs(10));
    assert_eq!(count(Some(&here), later).await.unwrap(), PendingLogins { client: 1, total: 3 }, "used and lapsed");
    assert_eq!(count(Some(&there), later).await.unwrap(), PendingLogins { client: 1, total: 3 });
    assert_eq!(count(None, later).await.unwrap(), PendingLogins { client: 0, total: 3 });
}

// --- The room --------------------------------------------------------------------------------

fn room_player(user: u8, device: &str, seen_at: Timestamp, playing: Option<&str>) -> spotauth_domain::room::Player {
    use spotauth_domain::room::{DeviceId, NowPlaying, Player, ShortName, SpotifyUri};
    Player {
        user_id: uid(user),
        device_id: DeviceId::new(device).unwrap(),
        device_name: ShortName::new(format!("Player of {user}")).unwrap(),
        now_playing: playing.map(|uri| NowPlaying {
            uri: SpotifyUri::item(uri).unwrap(),
            name: ShortName::new("A track").unwrap(),
            is_playing: true,
        }),
        seen_at,
    }
}

/// One player per person (the latest report wins); leaving names the device, so an old page
/// cannot remove the new one; `live` filters by report time; purge deletes the stale.
pub async fn room_players_are_one_per_person_and_leave_by_device<F: StoreFixture>(f: &F) {
    let p = f.repositories().players;
    p.upsert(room_player(1, "dev1", NOW, None)).await.unwrap();
    p.upsert(room_player(1, "dev2", NOW.plus(secs(1)), Some("spotify:track:abc"))).await.unwrap();
    p.upsert(room_player(2, "dev3", NOW.minus(secs(600)), None)).await.unwrap();
    let mine = p.player_of(uid(1)).await.unwrap().unwrap();
    assert_eq!(mine, room_player(1, "dev2", NOW.plus(secs(1)), Some("spotify:track:abc")), "replaced, read back whole");
    let live = p.live(NOW.minus(secs(90))).await.unwrap();
    assert_eq!(live.iter().map(|x| x.user_id).collect::<Vec<_>>(), [uid(1)]);
    let dev1 = spotauth_domain::room::DeviceId::new("dev1").unwrap();
    assert!(!p.remove(uid(1), Some(dev1)).await.unwrap(), "the old page's device is not the stored one");
    assert!(p.player_of(uid(1)).await.unwrap().is_some());
    assert_eq!(p.purge(NOW.minus(secs(90))).await.unwrap(), 1, "the stale one");
    assert!(p.player_of(uid(2)).await.unwrap().is_none());
    assert!(p.remove(uid(1), None).await.unwrap());
    assert!(p.player_of(uid(1)).await.unwrap().is_none());
}

/// Every bump makes the version larger; purging old change records never lowers it.
pub async fn room_version_only_grows_and_survives_purges<F: StoreFixture>(f: &F) {
    let p = f.repositories().players;
    assert_eq!(p.version().await.unwrap(), 0);
    let mut last = 0;
    for i in 0..3 {
        p.bump(NOW.plus(secs(i))).await.unwrap();
        let v = p.version().await.unwrap();
        assert!(v > last, "{v} > {last}");
        last = v;
    }
    assert_eq!(p.purge_changes(NOW.plus(secs(3600))).await.unwrap(), 2, "all but the latest");
    assert_eq!(p.version().await.unwrap(), last);
    p.bump(NOW.plus(secs(3601))).await.unwrap();
    assert!(p.version().await.unwrap() > last);
}

// ---------------------------------------------------------------------------------------------
// The change journal
// ---------------------------------------------------------------------------------------------

/// The users of the journal rows after `after`, and the new head.
async fn journaled(r: &Repositories, after: u64) -> (Vec<Option<UserId>>, u64) {
    let changes = r.changes.changes_after(after, 1000).await.unwrap();
    let head = r.changes.head().await.unwrap();
    assert_eq!(changes.last().map_or(after, |c| c.seq), head.max(after));
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq), "by position");
    (changes.iter().map(|c| c.user).collect(), head)
}

/// Every write that changes what a user's requests see (sessions rotated or revoked, profile,
/// opt-out, subscription, stored tokens) records that user in the journal, in its own
/// transaction; reads, touches, leases and writes that matched nothing record nothing; the
/// purge keeps the largest position.
pub async fn journal_records_every_write_that_changes_a_view<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let (u1, u2) = (uid(1), uid(2));
    assert_eq!(r.changes.head().await.unwrap(), 0);
    r.users.insert(new_user(1, PremiumStatus::Premium)).await.unwrap();
    r.users.insert(new_user(2, PremiumStatus::Premium)).await.unwrap();
    sign_in(&r, [1, 2]).await;
    let (none, head) = journaled(&r, 0).await;
    assert!(none.is_empty(), "a new user or session is in no cache: {none:?}");
    let (u1, u2) = (Some(u1), Some(u2));

    let s1 = SessionId::from_bytes([1; 16]);
    let (id1, id2) = (uid(1), uid(2));
    r.sessions.touch(s1, NOW.plus(secs(1))).await.unwrap();
    r.users.touch(id1, NOW.plus(secs(1))).await.unwrap();
    r.sessions.load_view(s1, Freshness::Latest).await.unwrap();
    r.tokens.try_acquire_refresh_lease(id1, "me", NOW, secs(30)).await.unwrap();
    r.tokens.release_refresh_lease(id1, "me").await.unwrap();
    assert_eq!(journaled(&r, head).await, (vec![], head), "reads, touches and leases change no view");

    r.sessions.rotate(s1, &hash(1), &hash(9), NOW, NOW.plus(secs(600))).await.unwrap();
    let stale = r.sessions.rotate(s1, &hash(1), &hash(8), NOW, NOW.plus(secs(600))).await;
    assert_eq!(stale.unwrap_err(), RepoError::StaleVersion);
    r.users.set_active(id2, false, NOW).await.unwrap();
    r.users.record_subscription(id2, new_user(2, PremiumStatus::Free).subscription).await.unwrap();
    let v = r.tokens.load_tokens(id1).await.unwrap().unwrap().version;
    let v = r.tokens.store_refreshed(id1, v, refreshed("x", None)).await.unwrap();
    r.tokens.mark_reauth_required(id1, v).await.unwrap();
    assert_eq!(r.tokens.mark_reauth_required(id1, v).await.unwrap_err(), RepoError::StaleVersion);
    r.tokens.delete_tokens(id2).await.unwrap();
    r.sessions.revoke(s1, NOW).await.unwrap();
    r.sessions.revoke(s1, NOW).await.unwrap();
    assert_eq!(r.sessions.revoke_all_for_user(id2, live(), None).await.unwrap(), 1);
    assert_eq!(r.sessions.revoke_all_for_user(id2, live(), None).await.unwrap(), 0);
    let (users, head) = journaled(&r, head).await;
    assert_eq!(users, [u1, u2, u2, u1, u1, u2, u1, u2], "once per write that changed something");

    let relogin = new_user(1, PremiumStatus::Premium);
    let login = LoginUpdate {
        spotify_id: relogin.spotify_id,
        display_name: relogin.display_name,
        subscription: relogin.subscription,
        tokens: relogin.tokens,
        now: NOW.plus(secs(5)),
    };
    r.users.update_on_login(id1, login).await.unwrap();
    let (users, head) = journaled(&r, head).await;
    assert_eq!(users, [u1]);

    assert_eq!(r.changes.changes_after(head, 1000).await.unwrap(), []);
    let purged = r.changes.purge_through(head).await.unwrap();
    assert_eq!(purged, 8, "all but the largest of the nine");
    assert_eq!(r.changes.head().await.unwrap(), head, "the position never goes back");
    r.users.set_active(id2, true, NOW).await.unwrap();
    assert!(r.changes.head().await.unwrap() > head);
}

/// `erase` deletes the user row, every session and the room player in one go, rewrites the
/// user's journal entries as erasures and appends one; other users keep everything; an unknown
/// or already erased id is `Ok(false)`.
pub async fn user_erase_leaves_nothing_of_the_user<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    let (u1, u2) = (uid(1), uid(2));
    for n in [1, 2] {
        r.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    sign_in(&r, [1, 2]).await;
    r.sessions.create(new_session(3, 1)).await.unwrap();
    r.players.upsert(room_player(1, "dev1", NOW, None)).await.unwrap();
    r.players.upsert(room_player(2, "dev2", NOW, None)).await.unwrap();
    r.users.set_active(u1, false, NOW).await.unwrap();
    r.users.set_active(u2, false, NOW).await.unwrap();
    let head = r.changes.head().await.unwrap();

    assert!(r.users.erase(u1).await.unwrap());
    assert_eq!(r.users.get(u1).await.unwrap(), None);
    assert_eq!(r.tokens.load_tokens(u1).await.unwrap_err(), RepoError::NotFound, "no row to hold tokens");
    for n in [1, 3] {
        assert_eq!(session_of(&r.sessions, SessionId::from_bytes([n; 16])).await, None);
    }
    assert_eq!(r.players.player_of(u1).await.unwrap(), None);
    let all = r.changes.changes_after(0, 1000).await.unwrap();
    assert_eq!(all.iter().map(|c| c.user).collect::<Vec<_>>(), [None, Some(u2), None], "rewritten, one appended");
    assert!(all.last().unwrap().seq > head);

    assert!(r.users.get(u2).await.unwrap().is_some(), "the other user keeps everything");
    assert!(r.tokens.load_tokens(u2).await.unwrap().is_some());
    assert!(session_of(&r.sessions, SessionId::from_bytes([2; 16])).await.is_some());
    assert!(r.players.player_of(u2).await.unwrap().is_some());
    assert!(!r.users.erase(u1).await.unwrap(), "already erased");
    assert!(!r.users.erase(uid(9)).await.unwrap(), "unknown");
    assert_eq!(r.changes.head().await.unwrap(), all.last().unwrap().seq, "nothing to record");
}

/// `page_tokens` pages through the users with tokens by id (users without tokens left out);
/// `newest_tokens` is the row with the latest access expiry among those not marked for
/// re-authorization.
pub async fn token_rows_page_by_id_and_the_newest_one_is_found<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    assert!(r.tokens.page_tokens(None, 10).await.unwrap().is_empty());
    assert_eq!(r.tokens.newest_tokens().await.unwrap(), None);
    for n in [3, 1, 2, 4] {
        r.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    r.tokens.delete_tokens(uid(4)).await.unwrap();
    let first = r.tokens.page_tokens(None, 2).await.unwrap();
    assert_eq!(first.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [uid(1), uid(2)], "by id");
    assert_eq!(first[0].1, r.tokens.load_tokens(uid(1)).await.unwrap().unwrap(), "as load_tokens reads them");
    let users = r.users.page(None, 3).await.unwrap();
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), [uid(1), uid(2), uid(3)], "users by id");
    assert_eq!(users[0], r.users.get(uid(1)).await.unwrap().unwrap(), "as get reads them");
    let users = r.users.page(Some(uid(3)), 3).await.unwrap();
    assert_eq!(users.iter().map(|u| u.id).collect::<Vec<_>>(), [uid(4)], "with tokens or not");
    let rest = r.tokens.page_tokens(Some(uid(2)), 2).await.unwrap();
    assert_eq!(rest.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [uid(3)], "no tokens, not listed");
    assert!(r.tokens.page_tokens(Some(uid(3)), 2).await.unwrap().is_empty());

    let v2 = r.tokens.load_tokens(uid(2)).await.unwrap().unwrap().version;
    let mut later = refreshed("two", None);
    later.access_expires_at = NOW.plus(secs(9000));
    let v2 = r.tokens.store_refreshed(uid(2), v2, later).await.unwrap();
    assert_eq!(r.tokens.newest_tokens().await.unwrap().map(|(u, _)| u), Some(uid(2)));
    r.tokens.mark_reauth_required(uid(2), v2).await.unwrap();
    let newest = r.tokens.newest_tokens().await.unwrap().map(|(u, _)| u);
    assert!(matches!(newest, Some(u) if u == uid(1) || u == uid(3)), "a marked row is no canary: {newest:?}");
}

/// `touch_many` sets `last_active` on every named row whose time is earlier, skips unknown ids
/// and never moves a time back.
pub async fn touch_many_only_moves_last_active_forward<F: StoreFixture>(f: &F) {
    let r = f.repositories();
    for n in [1, 2] {
        r.users.insert(new_user(n, PremiumStatus::Premium)).await.unwrap();
    }
    sign_in(&r, [1, 2]).await;
    let (s1, s2, ghost) =
        (SessionId::from_bytes([1; 16]), SessionId::from_bytes([2; 16]), SessionId::from_bytes([9; 16]));
    r.sessions.touch(s2, NOW.plus(secs(100))).await.unwrap();
    assert_eq!(r.sessions.touch_many(&[s1, s2, ghost], NOW.plus(secs(50))).await.unwrap(), 1);
    assert_eq!(session_of(&r.sessions, s1).await.unwrap().last_active, NOW.plus(secs(50)));
    assert_eq!(session_of(&r.sessions, s2).await.unwrap().last_active, NOW.plus(secs(100)), "never back");
    let many: Vec<SessionId> = (0..=255).map(|b| SessionId::from_bytes([b; 16])).chain([s1]).collect();
    assert_eq!(r.sessions.touch_many(&many, NOW.plus(secs(200))).await.unwrap(), 2, "over several statements");

    r.users.touch(uid(2), NOW.plus(secs(100))).await.unwrap();
    assert_eq!(r.users.touch_many(&[uid(1), uid(2), uid(9)], NOW.plus(secs(50))).await.unwrap(), 1);
    assert_eq!(r.users.get(uid(1)).await.unwrap().unwrap().last_active, NOW.plus(secs(50)));
    assert_eq!(r.users.get(uid(2)).await.unwrap().unwrap().last_active, NOW.plus(secs(100)));
    assert_eq!(r.changes.head().await.unwrap(), 0, "touches change no view");
}
