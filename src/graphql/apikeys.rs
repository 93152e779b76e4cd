//! Partner API keys over GraphQL (apikeys.write). The secret leaves the server once, in
//! `createApiKey`'s answer.

use super::context::state;
use super::context::user;
use super::convert::parse_id;
use super::roles::RoleRef;
use crate::audit::Tx;
use crate::error::AppResult;
use crate::service::apikeys::{self as svc, NewKeyInput};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum ApiKeyStatus {
    Active,
    Expired,
    Revoked,
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ApiKey {
    pub id: ID,
    pub name: String,
    /// The public part: the key starts with `pk_<prefix>_`.
    pub prefix: String,
    pub role: RoleRef,
    pub created_at: DateTime<Utc>,
    /// The user who created it.
    pub created_by: ID,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_ip: Option<String>,
    pub status: ApiKeyStatus,
}

#[async_graphql::ComplexObject]
impl ApiKey {
    /// This key's audit entries (created, revoked), newest first.
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<super::audit::AuditEntry>> {
        let p = user(ctx)?;
        super::history::of(ctx, p.workspace_id, parse_id("id", &self.id)?).await
    }
}

impl ApiKey {
    pub fn project(k: entity::api_key::Model, role_name: String, now: DateTime<Utc>) -> Self {
        let status = if k.revoked_at.is_some() {
            ApiKeyStatus::Revoked
        } else if k.expires_at.is_some_and(|e| now >= e) {
            ApiKeyStatus::Expired
        } else {
            ApiKeyStatus::Active
        };
        Self {
            id: ID(k.id.to_string()),
            name: k.name,
            prefix: k.prefix,
            role: RoleRef { id: ID(k.role_id.to_string()), name: role_name },
            created_at: k.created_at,
            created_by: ID(k.created_by.to_string()),
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            last_used_at: k.last_used_at,
            last_used_ip: k.last_used_ip,
            status,
        }
    }
}

#[derive(InputObject)]
pub struct CreateApiKeyInput {
    /// 1 to 100 characters.
    pub name: String,
    /// The role the key acts with; it must allow API access, and hold nothing you do
    /// not hold yourself.
    pub role_id: ID,
    /// When the key stops working; null for a key that works until revoked.
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(SimpleObject)]
pub struct CreateApiKeyPayload {
    pub api_key: ApiKey,
    /// The whole key, shown this once: send it as `Authorization: Bearer <secret>`.
    pub secret: String,
}

#[derive(Default)]
pub struct ApiKeysQuery;

#[Object]
impl ApiKeysQuery {
    /// Every API key of the workspace, newest first, revoked and expired ones included.
    async fn api_keys(&self, ctx: &Context<'_>) -> AppResult<Vec<ApiKey>> {
        let (state, p) = (state(ctx)?, user(ctx)?);
        let roles = crate::repo::roles::defs(&state.db, p.workspace_id).await.map_err(crate::error::AppError::from)?;
        let now = state.clock.now();
        Ok(svc::list(state, p)
            .await?
            .into_iter()
            .map(|k| {
                let role = roles.get(&k.role_id).map(|r| r.name.clone()).unwrap_or_default();
                ApiKey::project(k, role, now)
            })
            .collect())
    }
}

#[derive(Default)]
pub struct ApiKeysMutation;

#[Object]
impl ApiKeysMutation {
    /// Creates a key for a partner. Needs a recent step-up.
    async fn create_api_key(&self, ctx: &Context<'_>, input: CreateApiKeyInput) -> AppResult<CreateApiKeyPayload> {
        let (state, p, tx) = (state(ctx)?, user(ctx)?, Tx::current(ctx)?);
        let role_id = parse_id("input.roleId", &input.role_id)?;
        let (row, role, secret) =
            svc::create(state, &tx, p, NewKeyInput { name: input.name, role_id, expires_at: input.expires_at }).await?;
        Ok(CreateApiKeyPayload { api_key: ApiKey::project(row, role, state.clock.now()), secret: secret.expose().clone() })
    }

    /// Revokes a key: its next request fails and its open streams close. Needs a recent
    /// step-up.
    async fn revoke_api_key(&self, ctx: &Context<'_>, id: ID) -> AppResult<ApiKey> {
        let (state, p, tx) = (state(ctx)?, user(ctx)?, Tx::current(ctx)?);
        let id = parse_id("id", &id)?;
        let row = svc::revoke(state, &tx, p, id).await?;
        let roles = crate::repo::roles::defs(tx.db(), p.workspace_id).await.map_err(crate::error::AppError::from)?;
        let role = roles.get(&row.role_id).map(|r| r.name.clone()).unwrap_or_default();
        Ok(ApiKey::project(row, role, state.clock.now()))
    }
}
