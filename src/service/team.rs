//! Staff management: users, departments, teams and groups.
//!
//! Guarantees: nobody changes a user ranked at or above their own top role (themselves
//! included); contact fields need WRITE field access; the seat limit holds; a change of
//! department, team or groups bumps the permission epoch (scopes and group grants
//! follow at once); a deactivated or unlicensed user's sessions end at once.

use crate::audit::Tx;
use crate::audit::{AuditEvent, REDACTED};
use crate::auth::session::Subject;
use crate::auth::{BuiltinRole, UserPrincipal};
use crate::authz::catalog::{Permission, SensitiveField};
use crate::authz::{check, fields::require_write};
use crate::domain::Patch;
use crate::domain::{Email, NewPassword, Username, parse_name};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::state::AppState;
use entity::user;
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Default)]
pub struct UserPatch {
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub phone: Patch<String>,
    pub department_id: Patch<Uuid>,
    pub team_id: Patch<Uuid>,
    pub primary_group_id: Patch<Uuid>,
    pub group_ids: Option<Vec<Uuid>>,
    pub active: Option<bool>,
    pub licensed: Option<bool>,
    pub licence_ends_at: Patch<chrono::DateTime<chrono::Utc>>,
}

pub struct NewUserInput {
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    pub password: String,
    pub rest: UserPatch,
}

fn snapshot(u: &user::Model, groups: &[Uuid]) -> Value {
    json!({
        "username": u.username, "displayName": u.display_name,
        "email": REDACTED, "phone": u.phone.as_ref().map(|_| REDACTED),
        "active": u.active, "licensed": u.licensed, "licenceEndsAt": u.licence_ends_at.map(|t| t.to_rfc3339()),
        "departmentId": u.department_id.map(|d| d.to_string()), "teamId": u.team_id.map(|t| t.to_string()),
        "primaryGroupId": u.primary_group_id.map(|g| g.to_string()),
        "groupIds": groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
    })
}

/// `{key: {before, after}}` of the keys that differ; contact details are compared on
/// the real values but logged as redacted.
fn diff(before: Option<(&user::Model, &[Uuid])>, after: (&user::Model, &[Uuid])) -> Value {
    let b = before.map(|(u, g)| snapshot(u, g)).unwrap_or(Value::Null);
    let a = snapshot(after.0, after.1);
    let mut out = serde_json::Map::new();
    if let Some(obj) = a.as_object() {
        for (k, av) in obj {
            let bv = b.get(k).cloned().unwrap_or(Value::Null);
            let secret_changed = match (k.as_str(), before) {
                ("email", Some((u, _))) => u.email != after.0.email,
                ("phone", Some((u, _))) => u.phone != after.0.phone,
                _ => false,
            };
            if bv != *av || secret_changed {
                out.insert(k.clone(), json!({ "before": bv, "after": av }));
            }
        }
    }
    Value::Object(out)
}

async fn check_org(tx: &Tx<'_>, ws: Uuid, u: &user::Model, groups: &[Uuid]) -> AppResult<()> {
    if let Some(d) = u.department_id {
        repo::org::department(tx.db(), ws, d).await?.ok_or_else(|| AppError::bad_input("departmentId", "no such department"))?;
    }
    if let Some(t) = u.team_id {
        repo::org::team(tx.db(), ws, t).await?.ok_or_else(|| AppError::bad_input("teamId", "no such team"))?;
    }
    for g in u.primary_group_id.iter().chain(groups) {
        repo::org::group(tx.db(), ws, *g).await?.ok_or_else(|| AppError::bad_input("groupIds", "no such group"))?;
    }
    Ok(())
}

fn apply(mut u: user::Model, p: &UserPatch) -> AppResult<user::Model> {
    if let Some(n) = &p.display_name {
        u.display_name = parse_name("displayName", n, 200)?;
    }
    if let Some(e) = &p.email {
        let e = Email::parse("email", e)?;
        u.email = e.display;
        u.email_key = e.key;
    }
    u.phone = match &p.phone {
        Patch::Keep => u.phone,
        Patch::Clear => None,
        Patch::Set(v) => {
            let v = v.trim();
            if v.is_empty() || v.chars().count() > 64 || !v.chars().all(|c| c.is_ascii_digit() || " +-()./".contains(c)) {
                return Err(AppError::bad_input("phone", "must be a phone number of digits, spaces and + - ( ) . /"));
            }
            Some(v.to_owned())
        }
    };
    let pick = |p: &Patch<Uuid>, cur: Option<Uuid>| match p {
        Patch::Keep => cur,
        Patch::Clear => None,
        Patch::Set(v) => Some(*v),
    };
    u.department_id = pick(&p.department_id, u.department_id);
    u.team_id = pick(&p.team_id, u.team_id);
    u.primary_group_id = pick(&p.primary_group_id, u.primary_group_id);
    if let Some(a) = p.active {
        u.active = a;
    }
    if let Some(l) = p.licensed {
        u.licensed = l;
    }
    u.licence_ends_at = match &p.licence_ends_at {
        Patch::Keep => u.licence_ends_at,
        Patch::Clear => None,
        Patch::Set(t) => Some(*t),
    };
    Ok(u)
}

fn contact_fields(p: &UserPatch) -> Vec<SensitiveField> {
    let mut v = Vec::new();
    if p.email.is_some() {
        v.push(SensitiveField::UserEmail);
    }
    if !matches!(p.phone, Patch::Keep) {
        v.push(SensitiveField::UserPhone);
    }
    v
}

/// Joining a group hands the user every role assigned to that group, so each group
/// the change adds must carry only roles the actor could assign themselves.
async fn check_group_roles(tx: &Tx<'_>, p: &UserPrincipal, added: &[Uuid]) -> AppResult<()> {
    if added.is_empty() {
        return Ok(());
    }
    use sea_orm::ColumnTrait;
    let roles = repo::roles::defs(tx.db(), p.workspace_id).await?;
    let cond = sea_orm::sea_query::Condition::all().add(entity::role_assignment::Column::GroupId.is_in(added.iter().copied()));
    for a in repo::roles::assignments_where(tx.db(), p.workspace_id, cond).await? {
        if let Some(role) = roles.get(&a.model.role_id) {
            check::within_actor(&p.grants, &roles, role)?;
        }
    }
    Ok(())
}

async fn ensure_seat(tx: &Tx<'_>, ws: Uuid) -> AppResult<()> {
    let w = repo::workspaces::get(tx.db(), ws).await?.ok_or(AppError::NotFound)?;
    if repo::users::seats_used(tx.db(), ws).await? >= u64::try_from(w.seat_limit).unwrap_or(0) {
        return Err(AppError::Conflict(format!("all {} seats of this workspace are in use", w.seat_limit)));
    }
    Ok(())
}

pub async fn create_user(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, input: NewUserInput) -> AppResult<user::Model> {
    if !p.grants.has(Permission::TeamWrite) {
        return Err(AppError::Forbidden);
    }
    let ws = p.workspace_id;
    require_write(&p.grants, &[vec![SensitiveField::UserEmail], contact_fields(&input.rest)].concat())?;
    let username = Username::parse("username", &input.username)?;
    let email = Email::parse("email", &input.email)?;
    let password = NewPassword::parse("password", &input.password)?;
    let display = parse_name("displayName", input.display_name.as_deref().unwrap_or(&username.display), 200)?;
    let workspace = repo::workspaces::get(tx.db(), ws).await?.ok_or(AppError::Unauthenticated)?;
    let local = email.display.split('@').next().unwrap_or_default();
    crate::auth::password_policy::check_strength(
        "password",
        password.expose(),
        &[&username.display, &email.display, local, &workspace.name, &workspace.slug],
    )?;
    let now = state.clock.now();
    if input.rest.active != Some(false) && input.rest.licensed != Some(false) {
        ensure_seat(tx, ws).await?;
    }
    let hash = state.hasher.hash(&password).await?;
    let created = repo::users::insert(
        tx.db(),
        ws,
        repo::users::NewUser {
            username: &username,
            email: &email,
            display_name: &display,
            password_hash: Some(hash),
            builtin_role: BuiltinRole::Guest,
            department_id: None,
            team_id: None,
            primary_group_id: None,
            active: true,
            licensed: true,
            licence_ends_at: None,
            now,
        },
    )
    .await
    .map_err(|e| {
        if repo::is_unique_violation(&e) {
            AppError::Conflict("that username or email is taken in this workspace".into())
        } else {
            e.into()
        }
    })?;
    let mut u = apply(created, &input.rest)?;
    let groups = input.rest.group_ids.clone().unwrap_or_default();
    check_org(tx, ws, &u, &groups).await?;
    let joined: Vec<Uuid> = groups.iter().copied().chain(u.primary_group_id).collect();
    check_group_roles(tx, p, &joined).await?;
    u.updated_at = now;
    repo::users::save(tx.db(), &u).await?;
    repo::org::set_memberships(tx.db(), ws, u.id, &groups).await?;
    tx.audit(AuditEvent::Record {
        workspace_id: ws,
        action: "user.created",
        module: "team",
        target_type: "user",
        id: u.id,
        changes: diff(None, (&u, &groups)),
    });
    Ok(u)
}

pub async fn update_user(state: &AppState, tx: &Tx<'_>, p: &UserPrincipal, id: Uuid, patch: UserPatch) -> AppResult<user::Model> {
    if !p.grants.has(Permission::TeamWrite) {
        return Err(AppError::Forbidden);
    }
    let ws = p.workspace_id;
    // Email addresses receive sign-in codes and notices: support must not redirect them.
    if p.impersonation().is_some() && patch.email.is_some() {
        return Err(AppError::Denied("email addresses cannot be changed while impersonating".into()));
    }
    require_write(&p.grants, &contact_fields(&patch))?;
    let before = repo::users::get(tx.db(), ws, id).await?.ok_or(AppError::NotFound)?;
    if before.id == p.user_id {
        return Err(AppError::Denied("you cannot change your own account here".into()));
    }
    check::rank_below_actor(
        &p.grants,
        crate::service::roles::user_rank(tx.db(), ws, &before).await?,
        &format!("user {}", before.username),
    )?;
    let groups_before: Vec<Uuid> = repo::org::groups_of(tx.db(), ws, id).await?.into_iter().map(|g| g.id).collect();
    let mut after = apply(before.clone(), &patch)?;
    let groups_after = patch.group_ids.clone().unwrap_or_else(|| groups_before.clone());
    check_org(tx, ws, &after, &groups_after).await?;
    let had: Vec<Uuid> = groups_before.iter().copied().chain(before.primary_group_id).collect();
    let joined: Vec<Uuid> = groups_after.iter().copied().chain(after.primary_group_id).filter(|g| !had.contains(g)).collect();
    check_group_roles(tx, p, &joined).await?;
    let seat_before = before.active && before.licensed;
    let seat_after = after.active && after.licensed;
    if seat_after && !seat_before {
        ensure_seat(tx, ws).await?;
    }
    after.updated_at = state.clock.now();
    repo::users::save(tx.db(), &after).await.map_err(|e| {
        if repo::is_unique_violation(&e) { AppError::Conflict("that email is taken in this workspace".into()) } else { e.into() }
    })?;
    if patch.group_ids.is_some() {
        repo::org::set_memberships(tx.db(), ws, id, &groups_after).await?;
    }
    let placement_changed = before.department_id != after.department_id
        || before.team_id != after.team_id
        || before.primary_group_id != after.primary_group_id
        || groups_before != groups_after;
    if placement_changed {
        crate::service::permissions_changed(state, tx, ws).await?;
    } else {
        crate::service::principals_changed(state, tx, ws).await;
    }
    if seat_before && !seat_after {
        // Safe direction: sessions end even if the rest were to roll back.
        state.sessions.revoke_all(&Subject::User { user_id: id, workspace_id: ws }, None).await?;
    }
    tx.audit(AuditEvent::Record {
        workspace_id: ws,
        action: "user.updated",
        module: "team",
        target_type: "user",
        id,
        changes: diff(Some((&before, &groups_before)), (&after, &groups_after)),
    });
    Ok(after)
}

/// What kind of organisational unit to create.
#[derive(Clone, Copy)]
pub enum Unit {
    Department,
    Team,
    Group,
}

pub async fn create_unit(
    state: &AppState,
    tx: &Tx<'_>,
    p: &UserPrincipal,
    unit: Unit,
    name: &str,
    department_id: Option<Uuid>,
) -> AppResult<(Uuid, String)> {
    if !p.grants.has(Permission::TeamWrite) {
        return Err(AppError::Forbidden);
    }
    let ws = p.workspace_id;
    let name = parse_name("name", name, 200)?;
    let now = state.clock.now();
    let taken = |e: sea_orm::DbErr| if repo::is_unique_violation(&e) { AppError::Conflict("that name is taken".into()) } else { e.into() };
    let (id, kind) = match unit {
        Unit::Department => (repo::org::insert_department(tx.db(), ws, &name, now).await.map_err(taken)?.id, "department"),
        Unit::Team => {
            if let Some(d) = department_id {
                repo::org::department(tx.db(), ws, d).await?.ok_or_else(|| AppError::bad_input("departmentId", "no such department"))?;
            }
            (repo::org::insert_team(tx.db(), ws, department_id, &name, now).await.map_err(taken)?.id, "team")
        }
        Unit::Group => (repo::org::insert_group(tx.db(), ws, &name, now).await.map_err(taken)?.id, "group"),
    };
    let action = match unit {
        Unit::Department => "department.created",
        Unit::Team => "team.created",
        Unit::Group => "group.created",
    };
    tx.audit(AuditEvent::Record {
        workspace_id: ws,
        action,
        module: "team",
        target_type: kind,
        id,
        changes: json!({ "name": { "before": null, "after": name } }),
    });
    Ok((id, name))
}
