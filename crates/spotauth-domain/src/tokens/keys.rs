//! The keys tokens are sealed under: which key holds how many, re-encryption under the primary
//! key (key rotation), and the readiness canary. Everything goes through the ports: the cipher
//! says which key a ciphertext names; the store pages through the rows and writes each one back
//! with its version, so a rotation is safe while the service runs.

use std::collections::BTreeMap;

use crate::ids::UserId;
use crate::ports::{CipherError, RepoError, TokenError};
use crate::token::{RefreshedTokens, StoredTokens, TokenBinding, TokenColumn};

use super::TokenService;

/// How many stored token columns each key holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyCensus {
    /// The key new writes use.
    pub primary: String,
    /// Columns (access and refresh tokens) per key id, keys of the keyring and others alike.
    pub columns: BTreeMap<String, u64>,
    /// Of those, the key ids the keyring does not hold (their rows can only be reconnected).
    pub unknown: BTreeMap<String, u64>,
    /// Columns that are not a ciphertext of ours at all.
    pub malformed: u64,
    /// Users with stored tokens.
    pub users: u64,
}

/// What one page of a re-encryption did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReencryptPage {
    /// The last user of the page: where the next page starts; `None` when this was the last.
    pub next: Option<UserId>,
    /// Users looked at.
    pub scanned: u64,
    /// Users whose tokens were re-sealed under the primary key.
    pub rewritten: u64,
    /// Users whose tokens changed while being re-sealed (a refresh or login wrote them first,
    /// under the primary key): nothing to do.
    pub changed_meanwhile: u64,
    /// Users whose tokens are under a key the keyring no longer holds: marked "reconnect
    /// Spotify" (as after `invalid_grant`).
    pub unreadable: u64,
}

/// What the readiness canary found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Canary {
    /// The newest stored token decrypts (or none is stored yet).
    Ok,
    /// The newest stored token does not decrypt with the configured keys: the keyring lacks
    /// the key the service writes with, or the data does not belong to these keys.
    Unreadable(CipherError),
}

impl TokenService {
    /// Counts, over every stored row, the token columns under each key id.
    pub async fn key_census(&self, page: u32) -> Result<KeyCensus, TokenError> {
        let cipher = &self.ports.cipher;
        let mut census = KeyCensus { primary: cipher.primary_key_id(), ..KeyCensus::default() };
        let mut after = None;
        loop {
            let rows = self.ports.tokens.page_tokens(after, page.max(1)).await?;
            for (user, stored) in &rows {
                census.users += 1;
                for (column, ct) in
                    [(TokenColumn::Access, &stored.access_token), (TokenColumn::Refresh, &stored.refresh_token)]
                {
                    let Some(kid) = cipher.key_id_of(ct) else {
                        census.malformed += 1;
                        continue;
                    };
                    *census.columns.entry(kid.clone()).or_default() += 1;
                    let binding = TokenBinding { user_id: *user, column };
                    if matches!(cipher.decrypt(ct, binding), Err(CipherError::UnknownKey(_))) {
                        *census.unknown.entry(kid).or_default() += 1;
                    }
                }
            }
            match rows.last() {
                Some((last, _)) if rows.len() == page.max(1) as usize => after = Some(*last),
                _ => return Ok(census),
            }
        }
    }

    /// Re-seals under the primary key every row of one page (`limit` users after `after`) that
    /// is not already: decrypted with the key it names, encrypted with the primary, written back
    /// only if its version did not move (a refresh or login that wrote it first wrote under the
    /// primary key already). Rows under a key the keyring no longer holds are marked for
    /// re-authorization. Idempotent: running it again skips what is done, so an interrupted
    /// rotation resumes by running again.
    pub async fn reencrypt_page(&self, after: Option<UserId>, limit: u32) -> Result<ReencryptPage, TokenError> {
        let limit = limit.max(1);
        let rows = self.ports.tokens.page_tokens(after, limit).await?;
        let mut done = ReencryptPage {
            next: rows.last().map(|(u, _)| *u).filter(|_| rows.len() == limit as usize),
            scanned: rows.len() as u64,
            ..ReencryptPage::default()
        };
        let primary = self.ports.cipher.primary_key_id();
        for (user, stored) in rows {
            let sealed_under_primary = |ct| self.ports.cipher.key_id_of(ct).as_deref() == Some(primary.as_str());
            if sealed_under_primary(&stored.access_token) && sealed_under_primary(&stored.refresh_token) {
                continue;
            }
            match self.reseal(user, &stored) {
                Ok(update) => match self.ports.tokens.store_refreshed(user, stored.version, update).await {
                    Ok(_) => done.rewritten += 1,
                    Err(RepoError::StaleVersion | RepoError::NotFound) => done.changed_meanwhile += 1,
                    Err(e) => return Err(e.into()),
                },
                Err(CipherError::UnknownKey(_)) => {
                    done.unreadable += 1;
                    if !stored.reauth_required {
                        self.mark_reauth(user, &stored).await?;
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(done)
    }

    /// Both columns decrypted and sealed again under the primary key, expiry and scopes kept.
    fn reseal(&self, user: UserId, stored: &StoredTokens) -> Result<RefreshedTokens, CipherError> {
        let cipher = &self.ports.cipher;
        let bind = |column| TokenBinding { user_id: user, column };
        let access = cipher.decrypt(&stored.access_token, bind(TokenColumn::Access))?;
        let refresh = cipher.decrypt(&stored.refresh_token, bind(TokenColumn::Refresh))?;
        Ok(RefreshedTokens {
            access_token: cipher.encrypt(access.expose(), bind(TokenColumn::Access))?,
            access_expires_at: stored.access_expires_at,
            refresh_token: Some(cipher.encrypt(refresh.expose(), bind(TokenColumn::Refresh))?),
            scopes: stored.scopes.clone(),
        })
    }

    /// Whether the configured keys read what the service writes: the newest stored access token
    /// is decrypted (and thrown away).
    pub async fn canary(&self) -> Result<Canary, TokenError> {
        let Some((user, stored)) = self.ports.tokens.newest_tokens().await? else { return Ok(Canary::Ok) };
        let binding = TokenBinding { user_id: user, column: TokenColumn::Access };
        Ok(match self.ports.cipher.decrypt(&stored.access_token, binding) {
            Ok(_) => Canary::Ok,
            Err(e) => Canary::Unreadable(e),
        })
    }
}
