//! Roles and role assignments.

use crate::auth::BuiltinRole;
use crate::authz::builtin;
use crate::error::AppResult;
use crate::repo;
use crate::repo::roles::NewAssignment;
use sea_orm::ConnectionTrait;
use std::collections::HashMap;
use uuid::Uuid;

/// Creates Owner, Manager, Staff and Guest in a new workspace; returns their ids.
pub async fn create_builtin_roles(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<HashMap<BuiltinRole, Uuid>> {
    let mut ids = HashMap::new();
    for spec in builtin::specs() {
        let id = Uuid::now_v7();
        repo::roles::insert(db, workspace_id, &spec.def(id), spec.description, Some(spec.builtin.as_str()), now).await?;
        ids.insert(spec.builtin, id);
    }
    Ok(ids)
}

/// A plain, unconditional assignment of a role to a user (workspace creation, seed).
pub async fn assign_plain(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    role_id: Uuid,
    user_id: Uuid,
    by: Option<Uuid>,
    now: chrono::DateTime<chrono::Utc>,
) -> AppResult<()> {
    let a = NewAssignment {
        role_id,
        user_id: Some(user_id),
        group_id: None,
        valid_from: None,
        valid_until: None,
        networks: Vec::new(),
        require_two_factor: false,
        created_by: by,
    };
    repo::roles::assign(db, workspace_id, a, now).await?;
    Ok(())
}

use crate::audit::AuditEvent;
use crate::audit::Tx;
use crate::auth::UserPrincipal;
use crate::authz::catalog::{FieldAccess, Module, Permission, Scope, SensitiveField};
use crate::authz::check;
use crate::authz::eval::{Assignment, EvalContext, Restrictions, RoleDef, Via, lineage};
use crate::error::AppError;
use crate::repo::roles::StoredRole;
use crate::state::AppState;
use std::collections::{BTreeMap, BTreeSet};

pub struct RoleInput {
    pub name: String,
    pub description: String,
    pub rank: i32,
    pub parent_id: Option<Uuid>,
    pub permissions: BTreeSet<Permission>,
    pub denies: BTreeSet<Permission>,
    pub scopes: BTreeMap<Module, Scope>,
    pub fields: BTreeMap<SensitiveField, FieldAccess>,
    pub denied_fields: BTreeSet<SensitiveField>,
    pub restrictions: Restrictions,
}

fn role_json(def: &RoleDef, description: &str) -> serde_json::Value {
    let e = repo::roles::encode(def);
    serde_json::json!({
        "name": def.name, "description": description, "rank": def.rank, "parent": def.parent.map(|p| p.to_string()),
        "permissions": e.permissions, "denies": e.denies, "scopes": e.scopes, "fields": e.fields,
        "deniedFields": e.denied_fields, "restrictions": e.restrictions,
    })
}

fn actor_ctx(state: &AppState, actor: &UserPrincipal, ip: Option<std::net::IpAddr>) -> EvalContext {
    EvalContext { now: state.clock.now(), ip, two_factor: actor.two_factor() }
}

async fn actor_assignments(tx: &Tx<'_>, actor: &UserPrincipal) -> AppResult<Vec<Assignment>> {
    Ok(repo::roles::assignments_of(tx.db(), actor.workspace_id, actor.user_id, &actor.group_ids).await?)
}

fn build_def(id: Uuid, input: &RoleInput) -> AppResult<RoleDef> {
    let name = crate::domain::parse_name("name", &input.name, 100)?;
    if !(1..builtin::OWNER_RANK).contains(&input.rank) {
        return Err(AppError::bad_input("rank", format!("must be from 1 to {}", builtin::OWNER_RANK - 1)));
    }
    if input.description.chars().count() > 1000 {
        return Err(AppError::bad_input("description", "must be at most 1000 characters"));
    }
    Ok(RoleDef {
        id,
        name,
        rank: input.rank,
        parent: input.parent_id,
        permissions: input.permissions.clone(),
        denies: input.denies.clone(),
        scopes: input.scopes.clone(),
        fields: input.fields.clone(),
        denied_fields: input.denied_fields.clone(),
        restrictions: input.restrictions.clone(),
    })
}

fn name_taken(e: sea_orm::DbErr) -> AppError {
    if repo::is_unique_violation(&e) { AppError::Conflict("a role with this name already exists".into()) } else { e.into() }
}

fn check_parent(actor: &UserPrincipal, def: &RoleDef, roles: &HashMap<Uuid, RoleDef>) -> AppResult<()> {
    if let Some(parent) = def.parent {
        let p = roles.get(&parent).ok_or_else(|| AppError::bad_input("parentId", "no such role"))?;
        check::rank_below_actor(&actor.grants, p.rank, "the parent role")?;
        if lineage(roles, parent).iter().any(|r| r.id == def.id) {
            return Err(AppError::bad_input("parentId", "would make the role inherit from itself"));
        }
    }
    Ok(())
}

pub async fn create_role(state: &AppState, tx: &Tx<'_>, actor: &UserPrincipal, input: RoleInput) -> AppResult<StoredRole> {
    let def = build_def(Uuid::now_v7(), &input)?;
    let ws = actor.workspace_id;
    let roles = repo::roles::defs(tx.db(), ws).await?;
    check::rank_below_actor(&actor.grants, def.rank, "the role")?;
    check_parent(actor, &def, &roles)?;
    check::within_actor(&actor.grants, &roles, &def)?;
    repo::roles::insert(tx.db(), ws, &def, &input.description, None, state.clock.now()).await.map_err(name_taken)?;
    tx.audit(AuditEvent::RoleCreated { workspace_id: ws, role_id: def.id, after: role_json(&def, &input.description) });
    repo::roles::get(tx.db(), ws, def.id).await?.ok_or_else(|| AppError::internal("created role vanished"))
}

pub async fn update_role(
    state: &AppState,
    tx: &Tx<'_>,
    actor: &UserPrincipal,
    id: Uuid,
    input: RoleInput,
    ip: Option<std::net::IpAddr>,
) -> AppResult<StoredRole> {
    let ws = actor.workspace_id;
    let old = repo::roles::get(tx.db(), ws, id).await?.ok_or(AppError::NotFound)?;
    if old.builtin.as_deref() == Some("owner") {
        return Err(AppError::Denied("the Owner role cannot be changed".into()));
    }
    let def = build_def(id, &input)?;
    let mut roles = repo::roles::defs(tx.db(), ws).await?;
    check::rank_below_actor(&actor.grants, old.def.rank, "the role")?;
    check::rank_below_actor(&actor.grants, def.rank, "the new rank")?;
    check_parent(actor, &def, &roles)?;
    check::within_actor(&actor.grants, &roles, &def)?;
    roles.insert(id, def.clone());
    // Roles that inherit from this one change too; they must all be below the actor.
    for r in roles.values() {
        if lineage(&roles, r.id).iter().any(|a| a.id == id) {
            check::rank_below_actor(&actor.grants, r.rank, &format!("the role {} (which inherits this one)", r.name))?;
        }
    }
    check::keeps_own_admin_access(&actor.grants, &actor_assignments(tx, actor).await?, &roles, &actor_ctx(state, actor, ip))?;
    // Denies and narrower grants take power away from whoever holds the role: that
    // must be someone the actor could act on anyway.
    ensure_can_act_on_holders(tx, actor, &roles, id).await?;
    repo::roles::update(tx.db(), ws, &def, &input.description, state.clock.now()).await.map_err(name_taken)?;
    crate::service::permissions_changed(state, tx, ws).await?;
    tx.audit(AuditEvent::RoleUpdated {
        workspace_id: ws,
        role_id: id,
        before: role_json(&old.def, &old.description),
        after: role_json(&def, &input.description),
    });
    repo::roles::get(tx.db(), ws, id).await?.ok_or_else(|| AppError::internal("updated role vanished"))
}

pub async fn delete_role(state: &AppState, tx: &Tx<'_>, actor: &UserPrincipal, id: Uuid, ip: Option<std::net::IpAddr>) -> AppResult<()> {
    let ws = actor.workspace_id;
    let old = repo::roles::get(tx.db(), ws, id).await?.ok_or(AppError::NotFound)?;
    if old.builtin.is_some() {
        return Err(AppError::Conflict("built-in roles cannot be deleted".into()));
    }
    check::rank_below_actor(&actor.grants, old.def.rank, "the role")?;
    if !repo::roles::children(tx.db(), ws, id).await?.is_empty() {
        return Err(AppError::Conflict("other roles inherit from this role; change them first".into()));
    }
    let mut roles = repo::roles::defs(tx.db(), ws).await?;
    roles.remove(&id);
    check::keeps_own_admin_access(&actor.grants, &actor_assignments(tx, actor).await?, &roles, &actor_ctx(state, actor, ip))?;
    ensure_can_act_on_holders(tx, actor, &roles, id).await?;
    repo::roles::delete(tx.db(), ws, id).await?;
    crate::service::permissions_changed(state, tx, ws).await?;
    tx.audit(AuditEvent::RoleDeleted { workspace_id: ws, role_id: id, before: role_json(&old.def, &old.description) });
    Ok(())
}

/// The rank of a user, from every role assigned to them directly or through a group.
pub async fn user_rank(db: &impl ConnectionTrait, workspace_id: Uuid, user: &entity::user::Model) -> AppResult<i32> {
    let groups = repo::roles::group_ids_of(db, workspace_id, user).await?;
    let assignments = repo::roles::assignments_of(db, workspace_id, user.id, &groups).await?;
    let roles = repo::roles::defs(db, workspace_id).await?;
    Ok(check::rank_of(&assignments, &roles))
}

/// A change to a role reaches everyone who holds it or a role that inherits it, directly
/// or through a group; each of them must rank below the actor (who must not be one of
/// them). `roles` must still contain `role_id`'s heirs.
async fn ensure_can_act_on_holders(tx: &Tx<'_>, actor: &UserPrincipal, roles: &HashMap<Uuid, RoleDef>, role_id: Uuid) -> AppResult<()> {
    use sea_orm::ColumnTrait;
    let mut reached: Vec<Uuid> = roles.values().filter(|r| lineage(roles, r.id).iter().any(|a| a.id == role_id)).map(|r| r.id).collect();
    if !reached.contains(&role_id) {
        reached.push(role_id);
    }
    let cond = sea_orm::sea_query::Condition::all().add(entity::role_assignment::Column::RoleId.is_in(reached));
    for a in repo::roles::assignments_where(tx.db(), actor.workspace_id, cond).await? {
        ensure_can_act_on_assignee(tx, actor, a.model.user_id, a.model.group_id).await.map_err(|e| match e {
            AppError::Denied(why) => AppError::Denied(format!("{why} (a holder of this role)")),
            other => other,
        })?;
    }
    Ok(())
}

async fn ensure_can_act_on_assignee(tx: &Tx<'_>, actor: &UserPrincipal, user_id: Option<Uuid>, group_id: Option<Uuid>) -> AppResult<()> {
    let ws = actor.workspace_id;
    let mut users = Vec::new();
    if let Some(u) = user_id {
        users.push(repo::users::get(tx.db(), ws, u).await?.ok_or(AppError::NotFound)?);
    }
    if let Some(g) = group_id {
        repo::org::group(tx.db(), ws, g).await?.ok_or(AppError::NotFound)?;
        users.extend(repo::users::in_group(tx.db(), ws, g).await?);
    }
    for u in users {
        if u.id == actor.user_id {
            return Err(AppError::Denied("you cannot change your own roles".into()));
        }
        check::rank_below_actor(&actor.grants, user_rank(tx.db(), ws, &u).await?, &format!("user {}", u.username))?;
    }
    Ok(())
}

pub struct AssignInput {
    pub role_id: Uuid,
    pub user_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub valid_from: Option<chrono::DateTime<chrono::Utc>>,
    pub valid_until: Option<chrono::DateTime<chrono::Utc>>,
    pub networks: Vec<String>,
    pub require_two_factor: bool,
}

pub async fn assign_role(
    state: &AppState,
    tx: &Tx<'_>,
    actor: &UserPrincipal,
    input: AssignInput,
) -> AppResult<entity::role_assignment::Model> {
    let ws = actor.workspace_id;
    if input.user_id.is_some() == input.group_id.is_some() {
        return Err(AppError::bad_input("userId", "give exactly one of userId and groupId"));
    }
    if let (Some(from), Some(until)) = (input.valid_from, input.valid_until)
        && from >= until
    {
        return Err(AppError::bad_input("validUntil", "must be after validFrom"));
    }
    let networks = input
        .networks
        .iter()
        .map(|n| {
            n.trim().parse::<ipnet::IpNet>().map_err(|_| AppError::bad_input("networks", format!("{n:?} is not a CIDR like 10.0.0.0/8")))
        })
        .collect::<AppResult<Vec<_>>>()?;
    let roles = repo::roles::defs(tx.db(), ws).await?;
    let role = roles.get(&input.role_id).ok_or_else(|| AppError::bad_input("roleId", "no such role"))?;
    check::within_actor(&actor.grants, &roles, role)?;
    ensure_can_act_on_assignee(tx, actor, input.user_id, input.group_id).await?;
    let created = repo::roles::assign(
        tx.db(),
        ws,
        repo::roles::NewAssignment {
            role_id: role.id,
            user_id: input.user_id,
            group_id: input.group_id,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            networks,
            require_two_factor: input.require_two_factor,
            created_by: Some(actor.user_id),
        },
        state.clock.now(),
    )
    .await?;
    crate::service::permissions_changed(state, tx, ws).await?;
    tx.audit(AuditEvent::RoleAssigned { workspace_id: ws, assignment_id: created.id, after: assignment_json(&created, &role.name) });
    Ok(created)
}

fn assignment_json(a: &entity::role_assignment::Model, role: &str) -> serde_json::Value {
    serde_json::json!({
        "role": role, "roleId": a.role_id.to_string(), "userId": a.user_id.map(|u| u.to_string()), "groupId": a.group_id.map(|g| g.to_string()),
        "validFrom": a.valid_from.map(|t| t.to_rfc3339()), "validUntil": a.valid_until.map(|t| t.to_rfc3339()),
        "networks": a.networks, "requireTwoFactor": a.require_two_factor,
    })
}

pub async fn unassign_role(state: &AppState, tx: &Tx<'_>, actor: &UserPrincipal, id: Uuid) -> AppResult<()> {
    let ws = actor.workspace_id;
    let a = repo::roles::assignment(tx.db(), ws, id).await?.ok_or(AppError::NotFound)?;
    ensure_can_act_on_assignee(tx, actor, a.model.user_id, a.model.group_id).await?;
    let role = repo::roles::get(tx.db(), ws, a.model.role_id).await?.ok_or(AppError::NotFound)?;
    if role.builtin.as_deref() == Some("owner") && owners_left_without(tx, ws, role.def.id, id).await? == 0 {
        return Err(AppError::Conflict("the workspace must keep an active Owner".into()));
    }
    repo::roles::unassign(tx.db(), ws, id).await?;
    crate::service::permissions_changed(state, tx, ws).await?;
    tx.audit(AuditEvent::RoleUnassigned { workspace_id: ws, assignment_id: id, before: assignment_json(&a.model, &role.def.name) });
    Ok(())
}

/// Active, licensed users who would still hold the Owner role without `assignment`.
async fn owners_left_without(tx: &Tx<'_>, ws: Uuid, owner_role: Uuid, assignment: Uuid) -> AppResult<usize> {
    let holders = repo::roles::assignments_where(
        tx.db(),
        ws,
        sea_orm::sea_query::Condition::all().add(sea_orm::ColumnTrait::eq(&entity::role_assignment::Column::RoleId, owner_role)),
    )
    .await?;
    let mut n = 0;
    for a in holders
        .iter()
        .filter(|a| a.model.id != assignment && a.model.valid_until.is_none() && a.model.networks.as_array().is_none_or(|v| v.is_empty()))
    {
        if let Some(u) = a.model.user_id
            && let Some(user) = repo::users::get(tx.db(), ws, u).await?
            && user.active
            && user.licensed
        {
            n += 1;
        }
    }
    Ok(n)
}

pub fn via_label(v: &Via) -> String {
    match v {
        Via::Direct => "direct assignment".into(),
        Via::Group { group, .. } => format!("group {group}"),
    }
}
