//! How far a SQL credential reaches (S11, S22): as far as the member who made it, now. A
//! credential whose creator left logs in no more; one whose creator is no longer an admin reads
//! as a member (no `audit_log`). The wire endpoint asks at login and keeps asking while a
//! connection is open ([`App::sql_readers`]), closing it when the answer changes.

use std::collections::HashMap;

use burnrate_core::{Role, SqlCredentialId};
use burnrate_engine::Reader;
pub use burnrate_store::SqlCredentialRecord;
use burnrate_store::{AuditAction, OrgScope};

use crate::{Actor, App, Change, Result, Submitted};

/// A credential that may log in now.
pub struct SqlAccess {
    pub id: SqlCredentialId,
    pub scope: OrgScope,
    /// PostgreSQL's text form of the SCRAM-SHA-256 verifier.
    pub verifier: String,
    pub reader: Reader,
}

/// What a member of `role` reads through SQL.
pub fn reader_for(role: Role) -> Reader {
    if role.is_admin() { Reader::Admin } else { Reader::Member }
}

impl App {
    /// The credential a client names as its user, if it may log in: `None` for an unknown or
    /// revoked one, or one whose creator left the organization.
    pub async fn sql_login(&self, id: SqlCredentialId) -> Result<Option<SqlAccess>> {
        let mut tx = self.store.read_instance().await?;
        let login = tx.sql_login(id).await?;
        tx.commit().await?;
        Ok(login.filter(|l| !l.revoked).and_then(|l| {
            let role = l.creator_role?;
            Some(SqlAccess { id: l.id, scope: l.scope, verifier: l.verifier, reader: reader_for(role) })
        }))
    }

    /// The organization's credentials that may still be used, each with what it reads now.
    pub async fn sql_readers(&self, scope: OrgScope) -> Result<HashMap<SqlCredentialId, Reader>> {
        let mut tx = self.store.read_tenant(scope).await?;
        let standing = tx.sql_credential_standing().await?;
        tx.commit().await?;
        Ok(standing.into_iter().filter_map(|(id, role)| Some((id, reader_for(role?)))).collect())
    }
}

/// A credential as it is handed over, once.
pub struct NewSqlCredential {
    pub id: SqlCredentialId,
    /// Exists only in this value: the store keeps a SCRAM verifier.
    pub password: String,
    /// Waiting for another admin's approval: it logs in once approved.
    pub approval: Option<uuid::Uuid>,
}

impl App {
    /// Makes a SQL credential (admins), or asks for it where the organization wants approval:
    /// the password is shown now either way, the one time it is shown.
    pub async fn create_sql_credential(&self, actor: &Actor, name: &str) -> Result<NewSqlCredential> {
        actor.require_admin()?;
        let name = crate::api_keys::label(name)?;
        let password = burnrate_crypto::random_sql_password();
        let verifier = burnrate_crypto::ScramVerifier::new(&password).encode();
        let id = SqlCredentialId::generate();
        let approval = match self.submit(actor, Change::SqlCredentialCreate { id, name, verifier }, None).await? {
            Submitted::Applied(_) => None,
            Submitted::Queued(request) => Some(request),
        };
        Ok(NewSqlCredential { id, password, approval })
    }

    /// Revokes a credential; its open connections close within a second.
    pub async fn revoke_sql_credential(&self, actor: &Actor, id: SqlCredentialId) -> Result<()> {
        self.admin_change(actor, ("sql_credential", id.to_string()), AuditAction::SqlCredentialRevoked, async |tx| {
            Ok(tx.revoke_sql_credential(id).await?)
        })
        .await
    }
}

impl App {
    /// The organization's SQL credentials, revoked ones too.
    pub async fn sql_credentials(&self, actor: &Actor) -> Result<Vec<SqlCredentialRecord>> {
        let mut tx = self.store.read_tenant(actor.scope).await?;
        let list = tx.sql_credentials().await?;
        tx.commit().await?;
        Ok(list)
    }
}
