//! Support tooling for master admins: impersonation and the workspace lifecycle, and
//! the workspace's own say in it (support access).
//!
//! Guarantees:
//! - impersonation needs a stated reason (at least `REASON_MIN` characters) and lasts
//!   at most `MAX_MINUTES`; it is refused for suspended and deleted workspaces, for
//!   users who cannot sign in, for staff when the workspace turned support access off,
//!   and for Owners unless the workspace turned it on for them; one admin holds at most
//!   one open impersonation. It yields a separate session, marked as impersonation,
//!   that is never a recent step-up; the user is emailed who, why and until when;
//! - every entry written during an impersonation names both people (`audit::Actor`);
//! - lifecycle actions need a reason and move only along the allowed transitions;
//!   suspension and soft deletion end every session (and, through the authentication
//!   of every request and stream, every API key and socket) at once; a soft-deleted
//!   workspace can be restored until its retention period ends, and purged only after;
//! - every action here is written to the workspace's log and to the platform log, in
//!   the same transaction as the change.

use crate::audit::Tx;
use crate::audit::{AuditEvent, change};
use crate::auth::RequestMeta;
use crate::auth::session::{SessionImpersonation, Subject};
use crate::auth::{MasterPrincipal, Principal, UserPrincipal, may_sign_in};
use crate::authz::builtin::OWNER_RANK;
use crate::domain::{WorkspaceStatus, parse_reason};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::secret::Secret;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use entity::{impersonation, workspace};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use uuid::Uuid;

pub const REASON_MIN: usize = 10;
pub const DEFAULT_MINUTES: i32 = 30;
pub const MAX_MINUTES: i32 = 60;

/// The same event for the workspace's log and for the platform log.
fn both(
    workspace_id: Uuid,
    module: &'static str,
    action: &'static str,
    target_type: &'static str,
    target_id: String,
    changes: Value,
    reason: Option<String>,
) -> [AuditEvent; 2] {
    let ev = |w| AuditEvent::Support {
        workspace_id: w,
        module,
        action,
        target_type,
        target_id: target_id.clone(),
        changes: changes.clone(),
        reason: reason.clone(),
    };
    [ev(Some(workspace_id)), ev(None)]
}

fn record_both(tx: &Tx<'_>, events: [AuditEvent; 2]) {
    for e in events {
        tx.audit(e);
    }
}

/// Whether the user holds a role of Owner rank (directly or through a group, active or
/// not: a conditional Owner is still an Owner).
async fn is_owner(db: &impl ConnectionTrait, ws: Uuid, user: &entity::user::Model) -> AppResult<bool> {
    let groups = repo::roles::group_ids_of(db, ws, user).await?;
    let assignments = repo::roles::assignments_of(db, ws, user.id, &groups).await?;
    let roles = repo::roles::defs(db, ws).await?;
    Ok(crate::authz::check::rank_of(&assignments, &roles) >= OWNER_RANK)
}

pub struct StartInput {
    pub workspace_id: Uuid,
    pub user_id: Uuid,
    pub reason: String,
    pub minutes: Option<i32>,
}

pub struct Started {
    pub token: Secret<String>,
    pub record: impersonation::Model,
}

pub async fn start(state: &AppState, tx: &Tx<'_>, admin: &MasterPrincipal, meta: &RequestMeta, input: StartInput) -> AppResult<Started> {
    let db = tx.db();
    let reason = parse_reason("reason", &input.reason, REASON_MIN)?;
    let minutes = input.minutes.unwrap_or(DEFAULT_MINUTES);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(AppError::bad_input("minutes", format!("must be from 1 to {MAX_MINUTES}")));
    }
    let ws = repo::workspaces::get(db, input.workspace_id).await?.ok_or(AppError::NotFound)?;
    match WorkspaceStatus::parse(&ws.status) {
        WorkspaceStatus::Active | WorkspaceStatus::Archived => {}
        other => return Err(AppError::Denied(format!("the workspace is {}: restore it first", other.as_str()))),
    }
    let user = repo::users::get(db, ws.id, input.user_id).await?.ok_or(AppError::NotFound)?;
    let now = state.clock.now();
    if !may_sign_in(&user, &ws, now) {
        return Err(AppError::Denied("this user cannot sign in (inactive or without a licence)".into()));
    }
    if is_owner(db, ws.id, &user).await? {
        if !ws.support_access_owners {
            return Err(AppError::Denied("the workspace does not allow support access to its Owners (supportAccess.owners)".into()));
        }
    } else if !ws.support_access_staff {
        return Err(AppError::Denied("the workspace does not allow support access to its staff (supportAccess.staff)".into()));
    }
    if !repo::impersonations::open_for_admin(db, admin.admin_id, now).await?.is_empty() {
        return Err(AppError::Conflict("you are already impersonating someone: stop that first".into()));
    }
    let id = Uuid::now_v7();
    let until = now + chrono::Duration::minutes(i64::from(minutes));
    let who = SessionImpersonation { id, admin_id: admin.admin_id, admin_email: admin.email.clone() };
    let (token, session) = state
        .sessions
        .create_impersonation(
            Subject::User { user_id: user.id, workspace_id: ws.id },
            meta.ip_string(),
            meta.user_agent.clone(),
            until,
            who,
        )
        .await?;
    let sessions = state.sessions.clone();
    let hash = session.hash.clone();
    tx.on_rollback(move || {
        Box::pin(async move {
            if let Err(e) = sessions.revoke_hash(&hash).await {
                tracing::error!(error = %e, "could not remove the session of a rolled-back impersonation");
            }
        })
    });
    let record = repo::impersonations::insert(
        db,
        impersonation::Model {
            id,
            workspace_id: ws.id,
            user_id: user.id,
            admin_id: admin.admin_id,
            admin_email: admin.email.clone(),
            reason: reason.clone(),
            started_at: now,
            expires_at: session.record.expires_at,
            ended_at: None,
            ended_by: None,
            session_hash: session.hash.clone(),
        },
    )
    .await?;
    record_both(
        tx,
        both(
            ws.id,
            "support",
            "impersonation.started",
            "user",
            user.id.to_string(),
            json!({
                "impersonation": change(Value::Null, id.to_string()),
                "as": change(Value::Null, json!({ "id": user.id.to_string(), "username": user.username })),
                "until": change(Value::Null, record.expires_at.to_rfc3339()),
            }),
            Some(reason.clone()),
        ),
    );
    let body = format!(
        "Hello {},\n\nA Palisade support engineer ({}) has started a support session in your account in the workspace \"{}\".\n\nReason given: {}\nIt ends at the latest at {} (UTC).\n\nEverything done in it is recorded in your workspace's audit log under both names. If you did not expect this, contact your workspace Owner.\n",
        user.display_name,
        admin.email,
        ws.name,
        reason,
        record.expires_at.format("%Y-%m-%d %H:%M"),
    );
    crate::service::notify::mail_after_commit(
        state,
        tx,
        user.display_name.clone(),
        user.email.clone(),
        "Support access to your account".into(),
        body,
    );
    Ok(Started { token, record })
}

/// Ends an impersonation: the impersonation session ending itself, or a master admin
/// ending one by id.
pub async fn stop(state: &AppState, tx: &Tx<'_>, principal: &Principal, id: Option<Uuid>) -> AppResult<impersonation::Model> {
    let db = tx.db();
    let (id, by) = match (principal, id) {
        (Principal::User(u), None) => match u.impersonation() {
            Some(imp) => (imp.id, imp.admin_id),
            None => return Err(AppError::bad_input("id", "this session is not an impersonation; name one (master admins)")),
        },
        (Principal::MasterAdmin(m), Some(id)) => (id, m.admin_id),
        (Principal::MasterAdmin(_), None) => return Err(AppError::bad_input("id", "name the impersonation to stop")),
        _ => return Err(AppError::Forbidden),
    };
    let record = repo::impersonations::get(db, id).await?.ok_or(AppError::NotFound)?;
    let now = state.clock.now();
    if !repo::impersonations::end(db, id, Some(by), now).await? {
        return Err(AppError::Conflict("this impersonation has already ended".into()));
    }
    // Safe direction: the session ends even if the rest were to roll back.
    state.sessions.revoke_hash(&record.session_hash).await?;
    record_both(
        tx,
        both(
            record.workspace_id,
            "support",
            "impersonation.stopped",
            "user",
            record.user_id.to_string(),
            json!({ "impersonation": change(id.to_string(), id.to_string()), "endedAt": change(Value::Null, now.to_rfc3339()) }),
            None,
        ),
    );
    Ok(impersonation::Model { ended_at: Some(now), ended_by: Some(by), ..record })
}

/// Marks the impersonation behind a session that is ending (sign-out) as ended.
pub async fn ended_by_sign_out(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal) -> AppResult<()> {
    if let Some(imp) = p.impersonation() {
        repo::impersonations::end(tx.db(), imp.id, Some(imp.admin_id), state.clock.now()).await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImpersonationStatus {
    Active,
    Ended,
    Expired,
}

/// Past and open impersonations, newest first: every workspace's for a master admin
/// (optionally one), the Owner's own workspace's for an Owner.
pub async fn list(
    state: &AppState,
    principal: &Principal,
    workspace_id: Option<Uuid>,
) -> AppResult<Vec<(impersonation::Model, ImpersonationStatus)>> {
    let scope = match principal {
        Principal::MasterAdmin(_) => workspace_id,
        Principal::User(u) if workspace_id.is_none_or(|w| w == u.workspace_id) => Some(u.workspace_id),
        Principal::User(_) => return Err(AppError::NotFound),
        Principal::Anonymous => return Err(AppError::Unauthenticated),
    };
    let rows = repo::impersonations::list(&state.db, scope, 500).await?;
    let now = state.clock.now();
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let status = if r.ended_at.is_some() {
            ImpersonationStatus::Ended
        } else if now >= r.expires_at || !state.sessions.alive(&r.session_hash).await? {
            ImpersonationStatus::Expired
        } else {
            ImpersonationStatus::Active
        };
        out.push((r, status));
    }
    Ok(out)
}

/// Whether master admins may impersonate the workspace's staff, and its Owners.
pub async fn set_support_access(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    staff: bool,
    owners: bool,
) -> AppResult<workspace::Model> {
    let ws = repo::workspaces::get(tx.db(), p.workspace_id).await?.ok_or(AppError::NotFound)?;
    if owners && !ws.support_access_owners && p.grants.top_rank < OWNER_RANK {
        return Err(AppError::Denied("only an Owner may open support access to Owners".into()));
    }
    repo::workspaces::set_support_access(tx.db(), ws.id, staff, owners, state.clock.now()).await?;
    tx.audit(AuditEvent::Record {
        workspace_id: ws.id,
        action: "support.access_set",
        module: "support",
        target_type: "workspace",
        id: ws.id,
        changes: json!({
            "staff": change(ws.support_access_staff, staff),
            "owners": change(ws.support_access_owners, owners),
        }),
    });
    Ok(workspace::Model { support_access_staff: staff, support_access_owners: owners, ..ws })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Suspend,
    Archive,
    Restore,
    SoftDelete,
}

impl Lifecycle {
    fn action(self) -> &'static str {
        match self {
            Self::Suspend => "workspace.suspended",
            Self::Archive => "workspace.archived",
            Self::Restore => "workspace.restored",
            Self::SoftDelete => "workspace.deleted",
        }
    }

    fn target(self) -> WorkspaceStatus {
        match self {
            Self::Suspend => WorkspaceStatus::Suspended,
            Self::Archive => WorkspaceStatus::Archived,
            Self::Restore => WorkspaceStatus::Active,
            Self::SoftDelete => WorkspaceStatus::Deleted,
        }
    }
}

/// When a soft-deleted workspace stops being restorable and may be purged.
pub fn purgeable_after(state: &AppState, ws: &workspace::Model) -> Option<DateTime<Utc>> {
    ws.deleted_at.map(|d| d + chrono::Duration::days(i64::from(state.config.workspace_retention_days)))
}

/// Ends every session of every user of the workspace (after the change committed; the
/// status itself already refuses them on their next request).
fn end_all_sessions(state: &AppState, tx: &Tx<'_>, users: Vec<Uuid>, workspace_id: Uuid) {
    let sessions = state.sessions.clone();
    tx.after_commit(move || {
        Box::pin(async move {
            for user_id in users {
                if let Err(e) = sessions.revoke_all(&Subject::User { user_id, workspace_id }, None).await {
                    tracing::warn!(error = %e, "could not end a session of a suspended workspace (it is refused anyway)");
                }
            }
        })
    });
}

pub async fn change_status(state: &AppState, tx: &Tx<'_>, id: Uuid, to: Lifecycle, reason: &str) -> AppResult<workspace::Model> {
    let db = tx.db();
    let reason = parse_reason("reason", reason, REASON_MIN)?;
    let ws = repo::workspaces::get(db, id).await?.ok_or(AppError::NotFound)?;
    let from = WorkspaceStatus::parse(&ws.status);
    let now = state.clock.now();
    let target = to.target();
    if from == target {
        return Err(AppError::Conflict(format!("the workspace is already {}", target.as_str())));
    }
    let allowed = match to {
        Lifecycle::Suspend | Lifecycle::Archive | Lifecycle::SoftDelete => from != WorkspaceStatus::Deleted,
        Lifecycle::Restore => true,
    };
    if !allowed {
        return Err(AppError::Conflict(format!("a {} workspace cannot be {}; restore it first", from.as_str(), target.as_str())));
    }
    if to == Lifecycle::Restore && from == WorkspaceStatus::Deleted && purgeable_after(state, &ws).is_some_and(|t| now >= t) {
        return Err(AppError::Conflict("the retention period of this deleted workspace is over; it can only be purged".into()));
    }
    repo::workspaces::set_status(db, ws.id, target, &reason, now).await?;
    crate::service::principals_changed(state, tx, ws.id).await;
    if matches!(to, Lifecycle::Suspend | Lifecycle::SoftDelete) {
        let users = repo::users::ids(db, ws.id).await?;
        end_all_sessions(state, tx, users, ws.id);
    }
    record_both(
        tx,
        both(
            ws.id,
            "workspaces",
            to.action(),
            "workspace",
            ws.id.to_string(),
            json!({ "status": change(from.as_str(), target.as_str()), "slug": change(ws.slug.clone(), ws.slug.clone()) }),
            Some(reason),
        ),
    );
    repo::workspaces::get(db, ws.id).await?.ok_or(AppError::NotFound)
}

/// Deletes a soft-deleted workspace and everything in it, once its retention period is
/// over. Only the platform log keeps a record of it.
pub async fn purge(state: &AppState, tx: &Tx<'_>, id: Uuid, reason: &str) -> AppResult<u64> {
    let db = tx.db();
    let reason = parse_reason("reason", reason, REASON_MIN)?;
    let ws = repo::workspaces::get(db, id).await?.ok_or(AppError::NotFound)?;
    if WorkspaceStatus::parse(&ws.status) != WorkspaceStatus::Deleted {
        return Err(AppError::Conflict("only a soft-deleted workspace can be purged".into()));
    }
    let now = state.clock.now();
    if let Some(t) = purgeable_after(state, &ws)
        && now < t
    {
        return Err(AppError::Conflict(format!("the workspace can be restored until {}; it can be purged after that", t.to_rfc3339())));
    }
    let rows = repo::workspaces::purge(db, ws.id).await?;
    crate::service::principals_changed(state, tx, ws.id).await;
    tx.audit(AuditEvent::Support {
        workspace_id: None,
        module: "platform",
        action: "workspace.purged",
        target_type: "workspace",
        target_id: ws.id.to_string(),
        changes: json!({ "slug": change(ws.slug, Value::Null), "name": change(ws.name, Value::Null), "rowsDeleted": change(Value::Null, rows) }),
        reason: Some(reason),
    });
    Ok(rows)
}
