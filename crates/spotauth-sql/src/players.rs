//! `PlayerRepository`: the room's players and its version.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use spotauth_domain::ids::UserId;
use spotauth_domain::ports::RepoError;
use spotauth_domain::room::{DeviceId, NowPlaying, Player, PlayerRepository, ShortName, SpotifyUri};
use spotauth_domain::time::Timestamp;

use crate::conn::{AnyConn, Connections, each_backend};
use crate::schema::room_changes::dsl as ch;
use crate::schema::room_players::dsl as p;
use crate::store::SqlStore;

/// A `room_players` row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = crate::schema::room_players)]
#[diesel(treat_none_as_null = true)]
struct PlayerRow {
    user_id: String,
    device_id: String,
    device_name: String,
    track_uri: Option<String>,
    track_name: Option<String>,
    is_playing: bool,
    seen_at: i64,
}

impl From<Player> for PlayerRow {
    fn from(player: Player) -> Self {
        let (track_uri, track_name, is_playing) = match player.now_playing {
            Some(n) => (Some(n.uri.as_str().to_owned()), Some(n.name.as_str().to_owned()), n.is_playing),
            None => (None, None, false),
        };
        PlayerRow {
            user_id: player.user_id.to_string(),
            device_id: player.device_id.as_str().to_owned(),
            device_name: player.device_name.as_str().to_owned(),
            track_uri,
            track_name,
            is_playing,
            seen_at: player.seen_at.unix_millis(),
        }
    }
}

impl PlayerRow {
    /// Back to the domain; a row that does not validate is corrupt.
    fn into_player(self) -> Result<Player, RepoError> {
        let corrupt = |what: &str| RepoError::Corrupt(format!("room_players.{what}"));
        let now_playing = match (self.track_uri, self.track_name) {
            (Some(uri), Some(name)) => Some(NowPlaying {
                uri: SpotifyUri::item(&uri).map_err(|_| corrupt("track_uri"))?,
                name: ShortName::new(name).map_err(|_| corrupt("track_name"))?,
                is_playing: self.is_playing,
            }),
            _ => None,
        };
        Ok(Player {
            user_id: self.user_id.parse::<UserId>().map_err(|_| corrupt("user_id"))?,
            device_id: DeviceId::new(self.device_id).map_err(|_| corrupt("device_id"))?,
            device_name: ShortName::new(self.device_name).map_err(|_| corrupt("device_name"))?,
            now_playing,
            seen_at: Timestamp::from_unix_millis(self.seen_at),
        })
    }
}

#[async_trait]
impl<C: Connections> PlayerRepository for SqlStore<C> {
    async fn upsert(&self, player: Player) -> Result<(), RepoError> {
        let row = PlayerRow::from(player);
        self.write_one(move |mut conn| {
            Box::pin(async move {
                // One statement: the conflict clause is the only dialect part.
                let insert = diesel::insert_into(p::room_players).values(&row);
                match &mut conn {
                    AnyConn::Mysql(c) => {
                        insert.on_conflict(diesel::dsl::DuplicatedKeys).do_update().set(&row).execute(*c).await
                    }
                    AnyConn::Sqlite(c) => insert.on_conflict(p::user_id).do_update().set(&row).execute(*c).await,
                }?;
                Ok(())
            })
        })
        .await
    }

    async fn remove(&self, user: UserId, device: Option<DeviceId>) -> Result<bool, RepoError> {
        let user = user.to_string();
        let device = device.map(|d| d.as_str().to_owned());
        let n = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    let n = match &device {
                        Some(d) => each_backend!(&mut conn, |c| diesel::delete(
                            p::room_players.filter(p::user_id.eq(&user)).filter(p::device_id.eq(d))
                        )
                        .execute(c)
                        .await)?,
                        None => {
                            each_backend!(&mut conn, |c| diesel::delete(p::room_players.find(&user)).execute(c).await)?
                        }
                    };
                    Ok(n)
                })
            })
            .await?;
        Ok(n > 0)
    }

    async fn player_of(&self, user: UserId) -> Result<Option<Player>, RepoError> {
        let user = user.to_string();
        let row: Option<PlayerRow> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let row = each_backend!(&mut conn, |c| p::room_players
                        .find(&user)
                        .select(PlayerRow::as_select())
                        .first(c)
                        .await
                        .optional())?;
                    Ok(row)
                })
            })
            .await?;
        row.map(PlayerRow::into_player).transpose()
    }

    async fn live(&self, seen_after: Timestamp) -> Result<Vec<Player>, RepoError> {
        let since = seen_after.unix_millis();
        let rows: Vec<PlayerRow> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let rows = each_backend!(&mut conn, |c| p::room_players
                        .filter(p::seen_at.ge(since))
                        .select(PlayerRow::as_select())
                        .load(c)
                        .await)?;
                    Ok(rows)
                })
            })
            .await?;
        rows.into_iter().map(PlayerRow::into_player).collect()
    }

    async fn purge(&self, seen_before: Timestamp) -> Result<u64, RepoError> {
        let cutoff = seen_before.unix_millis();
        let n = self
            .write_one(move |mut conn| {
                Box::pin(async move {
                    let n =
                        each_backend!(&mut conn, |c| diesel::delete(p::room_players.filter(p::seen_at.lt(cutoff)))
                            .execute(c)
                            .await)?;
                    Ok(n)
                })
            })
            .await?;
        Ok(n as u64)
    }

    async fn bump(&self, now: Timestamp) -> Result<(), RepoError> {
        let at = now.unix_millis();
        self.write_one(move |mut conn| {
            Box::pin(async move {
                each_backend!(&mut conn, |c| diesel::insert_into(ch::room_changes)
                    .values(ch::changed_at.eq(at))
                    .execute(c)
                    .await)?;
                Ok(())
            })
        })
        .await
    }

    async fn version(&self) -> Result<u64, RepoError> {
        let latest: Option<i64> = self
            .read(move |mut conn| {
                Box::pin(async move {
                    let latest =
                        each_backend!(&mut conn, |c| ch::room_changes.select(diesel::dsl::max(ch::id)).first(c).await)?;
                    Ok(latest)
                })
            })
            .await?;
        Ok(latest.map_or(0, |v| u64::try_from(v).unwrap_or(0)))
    }

    async fn purge_changes(&self, before: Timestamp) -> Result<u64, RepoError> {
        let cutoff = before.unix_millis();
        let n = self
            .write(move |mut conn| {
                Box::pin(async move {
                    // The latest row stays: it is the version (an AUTO_INCREMENT may restart from
                    // the largest id left after a server restart, so never delete it).
                    let latest: Option<i64> =
                        each_backend!(&mut conn, |c| ch::room_changes.select(diesel::dsl::max(ch::id)).first(c).await)?;
                    let Some(latest) = latest else { return Ok(0) };
                    let n = each_backend!(&mut conn, |c| diesel::delete(
                        ch::room_changes.filter(ch::changed_at.lt(cutoff)).filter(ch::id.lt(latest))
                    )
                    .execute(c)
                    .await)?;
                    Ok(n)
                })
            })
            .await?;
        Ok(n as u64)
    }
}
