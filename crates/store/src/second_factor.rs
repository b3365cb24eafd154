//! A user's optional second factor (TOTP) and the login challenges that wait for its code.

use burnrate_core::UserId;
use burnrate_crypto::TotpSecret;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::accounts::now;
use crate::{InstanceTx, Result, on};

/// Where a user's second factor stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecondFactor {
    Off,
    /// A secret was shown and waits for its first code.
    Pending,
    On,
}

impl InstanceTx {
    pub async fn second_factor(&mut self, user: UserId) -> Result<SecondFactor> {
        let row: Option<(bool, bool)> = on!(&mut self.tx, c => sqlx::query_as(
            "SELECT totp_sealed IS NOT NULL, totp_pending_sealed IS NOT NULL FROM users WHERE id = $1")
            .bind(user.as_uuid()).fetch_optional(c).await)?;
        Ok(match row {
            Some((true, _)) => SecondFactor::On,
            Some((false, true)) => SecondFactor::Pending,
            _ => SecondFactor::Off,
        })
    }

    /// Keeps `secret` as the one being set up (replacing an earlier one not confirmed).
    pub async fn set_pending_totp(&mut self, vault: &crate::Vault, user: UserId, secret: &TotpSecret) -> Result<()> {
        let sealed =
            vault.seal_instance(self, "users", "totp_pending", &user.to_string(), secret.expose_bytes()).await?;
        on!(&mut self.tx, c => sqlx::query("UPDATE users SET totp_pending_sealed = $1 WHERE id = $2")
            .bind(sealed).bind(user.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// The secret being set up, or the one in use (`pending` says which).
    pub async fn user_totp(&mut self, vault: &crate::Vault, user: UserId, pending: bool) -> Result<Option<TotpSecret>> {
        let (sql, column) = if pending {
            ("SELECT totp_pending_sealed FROM users WHERE id = $1", "totp_pending")
        } else {
            ("SELECT totp_sealed FROM users WHERE id = $1", "totp")
        };
        let sealed: Option<Option<Vec<u8>>> =
            on!(&mut self.tx, c => sqlx::query_scalar(sql).bind(user.as_uuid()).fetch_optional(c).await)?;
        let Some(sealed) = sealed.flatten() else { return Ok(None) };
        let plain = vault.open_instance(self, "users", column, &user.to_string(), sealed).await?;
        Ok(Some(TotpSecret::from_bytes(&plain)))
    }

    /// Makes `secret` (the pending one, confirmed by a code of `step`) the one in use.
    pub async fn enable_totp(
        &mut self,
        vault: &crate::Vault,
        user: UserId,
        secret: &TotpSecret,
        step: i64,
    ) -> Result<()> {
        let sealed = vault.seal_instance(self, "users", "totp", &user.to_string(), secret.expose_bytes()).await?;
        on!(&mut self.tx, c => sqlx::query("UPDATE users SET totp_sealed = $1, totp_pending_sealed = NULL, totp_last_step = $2 WHERE id = $3")
            .bind(sealed).bind(step).bind(user.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    pub async fn disable_totp(&mut self, user: UserId) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("UPDATE users SET totp_sealed = NULL, totp_pending_sealed = NULL, totp_last_step = NULL WHERE id = $1")
            .bind(user.as_uuid()).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// Records that a code of `step` was used; false for a replayed or older code.
    pub async fn use_user_totp_step(&mut self, user: UserId, step: i64) -> Result<bool> {
        let n = on!(&mut self.tx, c => sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)")
            .bind(step).bind(user.as_uuid()).execute(c).await.map(|r| r.rows_affected()))?;
        Ok(n == 1)
    }

    pub async fn create_login_challenge(
        &mut self,
        token_hash: &[u8],
        user: UserId,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("INSERT INTO login_challenges (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash).bind(user.as_uuid()).bind(now()).bind(expires_at).execute(c).await.map(|_| ()))?;
        Ok(())
    }

    /// The user a challenge is for, while it lasts.
    pub async fn login_challenge(&mut self, token_hash: &[u8]) -> Result<Option<UserId>> {
        let row: Option<(Uuid, DateTime<Utc>)> = on!(&mut self.tx, c => sqlx::query_as(
            "SELECT user_id, expires_at FROM login_challenges WHERE token_hash = $1")
            .bind(token_hash).fetch_optional(c).await)?;
        Ok(row.filter(|(_, expires)| *expires > now()).map(|(u, _)| UserId::from_uuid(u)))
    }

    pub async fn delete_login_challenge(&mut self, token_hash: &[u8]) -> Result<()> {
        on!(&mut self.tx, c => sqlx::query("DELETE FROM login_challenges WHERE token_hash = $1")
            .bind(token_hash).execute(c).await.map(|_| ()))?;
        Ok(())
    }
}
