//! Platform operations for master admins (workspaces and their lifecycle,
//! impersonation), and the workspace's own support-access setting.

use super::context::user;
use super::context::{meta, principal, state};
use super::convert::parse_id;
use super::types::{CreateWorkspaceInput, CreateWorkspacePayload, WorkspaceStatus};
use crate::audit::Tx;
use crate::auth::Principal;
use crate::error::{AppError, AppResult};
use crate::service::support::{self as support, ImpersonationStatus as Status, Lifecycle, StartInput};
use crate::service::workspaces::{self, NewWorkspaceInput};
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

fn id(u: uuid::Uuid) -> ID {
    ID(u.to_string())
}

/// Support operations are hidden from everyone else's introspection (they are refused
/// to them by the policy table anyway).
pub(crate) fn sees_support_tools(ctx: &Context<'_>) -> bool {
    matches!(principal(ctx), Principal::MasterAdmin(_))
}

fn sees_impersonations(ctx: &Context<'_>) -> bool {
    match principal(ctx) {
        Principal::MasterAdmin(_) => true,
        Principal::User(u) => u.grants.top_rank >= crate::authz::builtin::OWNER_RANK,
        Principal::Anonymous => false,
    }
}

fn master<'a>(ctx: &Context<'a>) -> AppResult<&'a crate::auth::MasterPrincipal> {
    match principal(ctx) {
        Principal::MasterAdmin(m) => Ok(m),
        _ => Err(AppError::Forbidden),
    }
}

/// A workspace as platform support sees it.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct PlatformWorkspace {
    pub id: ID,
    pub slug: String,
    pub name: String,
    pub status: WorkspaceStatus,
    /// The reason given for the last status change.
    pub status_reason: Option<String>,
    pub status_changed_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// For a soft-deleted workspace: restorable until then, purgeable after.
    pub purgeable_after: Option<DateTime<Utc>>,
    pub support_access: SupportAccess,
    pub created_at: DateTime<Utc>,
}

/// A workspace's user as platform support sees it: enough to pick whom to
/// impersonate, no contact details.
#[derive(SimpleObject)]
pub struct PlatformUser {
    pub id: ID,
    pub username: String,
    pub display_name: String,
    pub active: bool,
    pub role: crate::auth::BuiltinRole,
}

#[async_graphql::ComplexObject]
impl PlatformWorkspace {
    /// The workspace's users (master admins), by username.
    async fn users(&self, ctx: &Context<'_>) -> AppResult<Vec<PlatformUser>> {
        master(ctx)?;
        let ws = parse_id("id", &self.id)?;
        let db = &state(ctx)?.db;
        let rows = crate::repo::users::all(db, ws).await?;
        let users: Vec<(uuid::Uuid, Option<uuid::Uuid>)> = rows.iter().map(|u| (u.id, u.primary_group_id)).collect();
        let org = super::types::OrgDirectory::load(db, ws, &users).await?;
        Ok(rows
            .into_iter()
            .map(|u| PlatformUser {
                id: id(u.id),
                role: org.top_role(u.id),
                username: u.username,
                display_name: u.display_name,
                active: u.active,
            })
            .collect())
    }
}

impl PlatformWorkspace {
    fn project(state: &crate::state::AppState, w: entity::workspace::Model) -> Self {
        Self {
            purgeable_after: support::purgeable_after(state, &w),
            support_access: SupportAccess { staff: w.support_access_staff, owners: w.support_access_owners },
            id: id(w.id),
            slug: w.slug,
            name: w.name,
            status: WorkspaceStatus::parse(&w.status),
            status_reason: w.status_reason,
            status_changed_at: w.status_changed_at,
            deleted_at: w.deleted_at,
            created_at: w.created_at,
        }
    }
}

/// Whether platform support (master admins) may impersonate this workspace's people.
#[derive(SimpleObject, Clone, Copy)]
pub struct SupportAccess {
    /// Staff below Owner rank (default on).
    pub staff: bool,
    /// Owners (default off; only an Owner can turn it on).
    pub owners: bool,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum ImpersonationStatus {
    Active,
    Ended,
    Expired,
}

#[derive(SimpleObject)]
pub struct Impersonation {
    pub id: ID,
    pub workspace_id: ID,
    pub user_id: ID,
    pub admin_id: ID,
    pub admin_email: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
    pub status: ImpersonationStatus,
}

impl Impersonation {
    fn project(m: entity::impersonation::Model, status: Status) -> Self {
        Self {
            id: id(m.id),
            workspace_id: id(m.workspace_id),
            user_id: id(m.user_id),
            admin_id: id(m.admin_id),
            admin_email: m.admin_email,
            reason: m.reason,
            started_at: m.started_at,
            expires_at: m.expires_at,
            ended_at: m.ended_at,
            status: match status {
                Status::Active => ImpersonationStatus::Active,
                Status::Ended => ImpersonationStatus::Ended,
                Status::Expired => ImpersonationStatus::Expired,
            },
        }
    }
}

#[derive(InputObject)]
pub struct StartImpersonationInput {
    pub workspace_id: ID,
    pub user_id: ID,
    /// Why (at least 10 characters); the user is told.
    pub reason: String,
    /// 1 to 60; default 30.
    pub minutes: Option<i32>,
}

#[derive(SimpleObject)]
pub struct StartImpersonationPayload {
    /// The impersonation session's token: send it as `Authorization: Bearer <token>`.
    /// No cookie is set, so your own session stays as it is.
    pub token: String,
    pub impersonation: Impersonation,
}

#[derive(SimpleObject)]
pub struct PurgedWorkspace {
    pub id: ID,
    pub rows_deleted: i64,
}

#[derive(Default)]
pub struct PlatformQuery;

#[Object]
impl PlatformQuery {
    /// Every workspace (master admins); soft-deleted ones only with `includeDeleted`.
    #[graphql(visible = "sees_support_tools")]
    async fn workspaces(&self, ctx: &Context<'_>, #[graphql(default = false)] include_deleted: bool) -> AppResult<Vec<PlatformWorkspace>> {
        master(ctx)?;
        let state = state(ctx)?;
        let all = crate::repo::workspaces::all(&state.db).await?;
        Ok(all
            .into_iter()
            .filter(|w| include_deleted || WorkspaceStatus::parse(&w.status) != WorkspaceStatus::Deleted)
            .map(|w| PlatformWorkspace::project(state, w))
            .collect())
    }

    /// Impersonations, newest first, with their reasons: every workspace's for master
    /// admins (or one, with `workspaceId`), the Owner's own workspace's for an Owner.
    #[graphql(visible = "sees_impersonations")]
    async fn impersonation_sessions(&self, ctx: &Context<'_>, workspace_id: Option<ID>) -> AppResult<Vec<Impersonation>> {
        let ws = workspace_id.as_ref().map(|w| parse_id("workspaceId", w)).transpose()?;
        let rows = support::list(state(ctx)?, principal(ctx), ws).await?;
        Ok(rows.into_iter().map(|(m, s)| Impersonation::project(m, s)).collect())
    }

    /// Whether platform support may impersonate this workspace's staff and Owners.
    async fn support_access(&self, ctx: &Context<'_>) -> AppResult<SupportAccess> {
        let p = user(ctx)?;
        let ws = crate::repo::workspaces::get(&state(ctx)?.db, p.workspace_id).await?.ok_or(AppError::NotFound)?;
        Ok(SupportAccess { staff: ws.support_access_staff, owners: ws.support_access_owners })
    }
}

#[derive(Default)]
pub struct PlatformMutation;

#[Object]
impl PlatformMutation {
    /// Creates a workspace and its Owner (master admins only).
    #[graphql(visible = "sees_support_tools")]
    async fn create_workspace(&self, ctx: &Context<'_>, input: CreateWorkspaceInput) -> AppResult<CreateWorkspacePayload> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let (ws, owner, event) = workspaces::create(
            state,
            tx.db(),
            NewWorkspaceInput {
                slug: &input.slug,
                name: &input.name,
                owner_username: &input.owner.username,
                owner_email: &input.owner.email,
                owner_password: &input.owner.password,
                check_strength: true,
            },
        )
        .await?;
        tx.audit(event);
        // The platform log keeps its own record: the workspace's log may be purged.
        tx.audit(crate::audit::AuditEvent::Support {
            workspace_id: None,
            module: "platform",
            action: "workspace.created",
            target_type: "workspace",
            target_id: ws.id.to_string(),
            changes: serde_json::json!({ "slug": crate::audit::change(serde_json::Value::Null, ws.slug.clone()) }),
            reason: None,
        });
        // Read in this transaction: the owner's role is not committed yet.
        let org = super::types::OrgDirectory::load(tx.db(), ws.id, &[(owner.id, owner.primary_group_id)]).await?;
        let mut owner = super::types::User::project(owner, super::types::Viewing::Full);
        owner.org = Some(std::sync::Arc::new(org));
        Ok(CreateWorkspacePayload { workspace: ws.into(), owner })
    }

    /// Acts as a workspace user for a while (master admins), with a stated reason. The
    /// user is emailed; every response of the session carries an `impersonation`
    /// extension, and every audit entry names you both.
    #[graphql(visible = "sees_support_tools")]
    async fn start_impersonation(&self, ctx: &Context<'_>, input: StartImpersonationInput) -> AppResult<StartImpersonationPayload> {
        let (state, tx, admin, meta) = (state(ctx)?, Tx::current(ctx)?, master(ctx)?, meta(ctx)?);
        let started = support::start(
            state,
            &tx,
            admin,
            meta,
            StartInput {
                workspace_id: parse_id("input.workspaceId", &input.workspace_id)?,
                user_id: parse_id("input.userId", &input.user_id)?,
                reason: input.reason,
                minutes: input.minutes,
            },
        )
        .await?;
        Ok(StartImpersonationPayload {
            token: started.token.expose().clone(),
            impersonation: Impersonation::project(started.record, Status::Active),
        })
    }

    /// Ends an impersonation: from the impersonation session itself (no id), or by a
    /// master admin (with its id). Running out ends it too.
    async fn stop_impersonation(&self, ctx: &Context<'_>, id: Option<ID>) -> AppResult<Impersonation> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let id = id.as_ref().map(|i| parse_id("id", i)).transpose()?;
        let m = support::stop(state, &tx, principal(ctx), id).await?;
        Ok(Impersonation::project(m, Status::Ended))
    }

    /// Whether platform support may impersonate the workspace's staff, and its Owners
    /// (only an Owner may allow the latter). Needs settings.write and a recent step-up.
    async fn update_support_access(&self, ctx: &Context<'_>, staff: bool, owners: bool) -> AppResult<SupportAccess> {
        let (state, tx, p) = (state(ctx)?, Tx::current(ctx)?, user(ctx)?);
        let ws = support::set_support_access(state, &tx, p, staff, owners).await?;
        Ok(SupportAccess { staff: ws.support_access_staff, owners: ws.support_access_owners })
    }

    /// Suspends a workspace: every session, API key and stream ends at once and nobody
    /// can sign in (WORKSPACE_SUSPENDED); its data is untouched.
    #[graphql(visible = "sees_support_tools")]
    async fn suspend_workspace(&self, ctx: &Context<'_>, id: ID, reason: String) -> AppResult<PlatformWorkspace> {
        lifecycle(ctx, id, Lifecycle::Suspend, reason).await
    }

    /// Archives a workspace: read-only. Sign-in and reads work; every change is refused
    /// (WORKSPACE_ARCHIVED).
    #[graphql(visible = "sees_support_tools")]
    async fn archive_workspace(&self, ctx: &Context<'_>, id: ID, reason: String) -> AppResult<PlatformWorkspace> {
        lifecycle(ctx, id, Lifecycle::Archive, reason).await
    }

    /// Back to active (from suspended, archived, or soft-deleted within its retention
    /// period).
    #[graphql(visible = "sees_support_tools")]
    async fn restore_workspace(&self, ctx: &Context<'_>, id: ID, reason: String) -> AppResult<PlatformWorkspace> {
        lifecycle(ctx, id, Lifecycle::Restore, reason).await
    }

    /// Soft-deletes a workspace: hidden and unusable, restorable until
    /// `purgeableAfter` (PALISADE_WORKSPACE_RETENTION_DAYS).
    #[graphql(visible = "sees_support_tools")]
    async fn soft_delete_workspace(&self, ctx: &Context<'_>, id: ID, reason: String) -> AppResult<PlatformWorkspace> {
        lifecycle(ctx, id, Lifecycle::SoftDelete, reason).await
    }

    /// Deletes a soft-deleted workspace and all its data for good, once its retention
    /// period is over. The platform log keeps the record.
    #[graphql(visible = "sees_support_tools")]
    async fn purge_workspace(&self, ctx: &Context<'_>, id: ID, reason: String) -> AppResult<PurgedWorkspace> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let ws = parse_id("id", &id)?;
        let rows = support::purge(state, &tx, ws, &reason).await?;
        Ok(PurgedWorkspace { id, rows_deleted: i64::try_from(rows).unwrap_or(i64::MAX) })
    }
}

async fn lifecycle(ctx: &Context<'_>, id: ID, to: Lifecycle, reason: String) -> AppResult<PlatformWorkspace> {
    let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
    let ws = support::change_status(state, &tx, parse_id("id", &id)?, to, &reason).await?;
    Ok(PlatformWorkspace::project(state, ws))
}
