//! Partner API keys: create (the secret is shown once), list, revoke.
//!
//! Guarantees: nobody creates a key whose role (with its ancestors) holds a permission,
//! scope, field access or restriction they do not hold themselves (the same rule as
//! assigning the role to a person), and the role must allow API access; the secret is
//! returned once and only its hash is stored; a revoked or expired key stops working at
//! its next request, and its open audit streams close (see `graphql::ws`).

use crate::audit::Tx;
use crate::audit::{AuditEvent, change};
use crate::auth::UserPrincipal;
use crate::auth::apikey;
use crate::authz::check;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::secret::Secret;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

pub struct NewKeyInput {
    pub name: String,
    pub role_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
}

fn event(workspace_id: Uuid, action: &'static str, id: Uuid, changes: Value) -> AuditEvent {
    AuditEvent::Record { workspace_id, action, module: "apikeys", target_type: "api_key", id, changes }
}

pub async fn create(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    input: NewKeyInput,
) -> AppResult<(entity::api_key::Model, String, Secret<String>)> {
    let ws = p.workspace_id;
    let name = crate::domain::parse_name("name", &input.name, 100)?;
    let now = state.clock.now();
    if input.expires_at.is_some_and(|e| e <= now) {
        return Err(AppError::bad_input("expiresAt", "must be in the future"));
    }
    let roles = repo::roles::defs(tx.db(), ws).await?;
    let role = roles.get(&input.role_id).ok_or_else(|| AppError::bad_input("roleId", "no such role"))?;
    if !role.restrictions.api_access {
        return Err(AppError::bad_input("roleId", "this role does not allow API access (restrictions.apiAccess)"));
    }
    check::within_actor(&p.grants, &roles, role)?;
    let (prefix, secret, hash) = apikey::generate();
    let row = repo::api_keys::insert(
        tx.db(),
        ws,
        repo::api_keys::NewKey {
            name: &name,
            role_id: role.id,
            prefix: &prefix,
            secret_hash: &hash,
            created_by: p.user_id,
            expires_at: input.expires_at,
            now,
        },
    )
    .await?;
    tx.audit(event(
        ws,
        "apikey.created",
        row.id,
        json!({
            "name": change(Value::Null, name),
            "role": change(Value::Null, json!({ "id": role.id.to_string(), "name": role.name })),
            "prefix": change(Value::Null, prefix),
            "expiresAt": change(Value::Null, input.expires_at.map(|t| t.to_rfc3339())),
            "secret": change(Value::Null, crate::audit::REDACTED),
        }),
    ));
    Ok((row, role.name.clone(), secret))
}

pub async fn revoke(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid) -> AppResult<entity::api_key::Model> {
    let ws = p.workspace_id;
    let now = state.clock.now();
    let Some(before) = repo::api_keys::get(tx.db(), ws, id).await? else { return Err(AppError::NotFound) };
    if before.revoked_at.is_some() {
        return Err(AppError::Conflict("this key is already revoked".into()));
    }
    repo::api_keys::revoke(tx.db(), ws, id, p.user_id, now).await?;
    crate::service::principals_changed(state, tx, ws).await;
    tx.audit(event(
        ws,
        "apikey.revoked",
        id,
        json!({ "status": change("active", "revoked"), "revokedAt": change(Value::Null, now.to_rfc3339()) }),
    ));
    repo::api_keys::get(tx.db(), ws, id).await?.ok_or(AppError::NotFound)
}

pub async fn list(state: &AppState, p: &UserPrincipal) -> AppResult<Vec<entity::api_key::Model>> {
    Ok(repo::api_keys::list(&state.db, p.workspace_id).await?)
}
