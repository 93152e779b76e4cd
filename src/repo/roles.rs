//! Roles and role assignments. Stored grants are parsed back into the catalog's enums;
//! an entry that no longer parses is dropped (it can grant nothing).

use crate::authz::catalog::{FieldAccess, Module, Permission, Scope, SensitiveField};
use crate::authz::eval::{Assignment, RoleDef, Via};
use entity::{group, group_member, role, role_assignment, user, workspace};
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use uuid::Uuid;

type Now = chrono::DateTime<chrono::Utc>;

/// A role as stored: the evaluator's definition plus what only people need.
#[derive(Debug, Clone)]
pub struct StoredRole {
    pub def: RoleDef,
    pub description: String,
    pub builtin: Option<String>,
    pub created_at: Now,
    pub updated_at: Now,
}

fn perm_set(v: &Value) -> BTreeSet<Permission> {
    v.as_array().into_iter().flatten().filter_map(|p| p.as_str().and_then(Permission::parse)).collect()
}

fn decode(m: role::Model) -> StoredRole {
    let scopes = m
        .scopes
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((Module::parse(k)?, serde_json::from_value::<Scope>(v.clone()).ok()?)))
        .collect();
    let fields = m
        .fields
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((SensitiveField::parse(k)?, serde_json::from_value::<FieldAccess>(v.clone()).ok()?)))
        .collect();
    let denied_fields =
        m.denied_fields.as_array().into_iter().flatten().filter_map(|f| f.as_str().and_then(SensitiveField::parse)).collect();
    StoredRole {
        def: RoleDef {
            id: m.id,
            name: m.name,
            rank: m.rank,
            parent: m.parent_id,
            permissions: perm_set(&m.permissions),
            denies: perm_set(&m.denies),
            scopes,
            fields,
            denied_fields,
            restrictions: serde_json::from_value(m.restrictions).unwrap_or_default(),
        },
        description: m.description,
        builtin: m.builtin,
        created_at: m.created_at,
        updated_at: m.updated_at,
    }
}

pub struct Encoded {
    pub permissions: Value,
    pub denies: Value,
    pub scopes: Value,
    pub fields: Value,
    pub denied_fields: Value,
    pub restrictions: Value,
}

pub fn encode(d: &RoleDef) -> Encoded {
    Encoded {
        permissions: json!(d.permissions.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
        denies: json!(d.denies.iter().map(|p| p.as_str()).collect::<Vec<_>>()),
        scopes: Value::Object(d.scopes.iter().map(|(m, s)| (m.as_str().to_owned(), json!(s))).collect()),
        fields: Value::Object(d.fields.iter().map(|(f, a)| (f.key().to_owned(), json!(a))).collect()),
        denied_fields: json!(d.denied_fields.iter().map(|f| f.key()).collect::<Vec<_>>()),
        restrictions: json!(d.restrictions),
    }
}

pub async fn all(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<Vec<StoredRole>, DbErr> {
    Ok(role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .order_by_desc(role::Column::Rank)
        .order_by_asc(role::Column::NameKey)
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect())
}

pub async fn defs(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<HashMap<Uuid, RoleDef>, DbErr> {
    Ok(all(db, workspace_id).await?.into_iter().map(|r| (r.def.id, r.def)).collect())
}

pub async fn get(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Option<StoredRole>, DbErr> {
    Ok(role::Entity::find_by_id(id).filter(role::Column::WorkspaceId.eq(workspace_id)).one(db).await?.map(decode))
}

pub async fn by_builtin(db: &impl ConnectionTrait, workspace_id: Uuid, builtin: &str) -> Result<Option<StoredRole>, DbErr> {
    Ok(role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .filter(role::Column::Builtin.eq(builtin))
        .one(db)
        .await?
        .map(decode))
}

pub async fn insert(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    def: &RoleDef,
    description: &str,
    builtin: Option<&str>,
    now: Now,
) -> Result<(), DbErr> {
    let e = encode(def);
    role::ActiveModel {
        id: Set(def.id),
        workspace_id: Set(workspace_id),
        name: Set(def.name.clone()),
        name_key: Set(crate::domain::fold_key(&def.name)),
        description: Set(description.to_owned()),
        builtin: Set(builtin.map(Into::into)),
        rank: Set(def.rank),
        parent_id: Set(def.parent),
        permissions: Set(e.permissions),
        denies: Set(e.denies),
        scopes: Set(e.scopes),
        fields: Set(e.fields),
        denied_fields: Set(e.denied_fields),
        restrictions: Set(e.restrictions),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn update(db: &impl ConnectionTrait, workspace_id: Uuid, def: &RoleDef, description: &str, now: Now) -> Result<(), DbErr> {
    let e = encode(def);
    role::Entity::update_many()
        .col_expr(role::Column::Name, Expr::value(def.name.clone()))
        .col_expr(role::Column::NameKey, Expr::value(crate::domain::fold_key(&def.name)))
        .col_expr(role::Column::Description, Expr::value(description.to_owned()))
        .col_expr(role::Column::Rank, Expr::value(def.rank))
        .col_expr(role::Column::ParentId, Expr::value(def.parent))
        .col_expr(role::Column::Permissions, Expr::value(e.permissions))
        .col_expr(role::Column::Denies, Expr::value(e.denies))
        .col_expr(role::Column::Scopes, Expr::value(e.scopes))
        .col_expr(role::Column::Fields, Expr::value(e.fields))
        .col_expr(role::Column::DeniedFields, Expr::value(e.denied_fields))
        .col_expr(role::Column::Restrictions, Expr::value(e.restrictions))
        .col_expr(role::Column::UpdatedAt, Expr::value(now))
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .filter(role::Column::Id.eq(def.id))
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn delete(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<(), DbErr> {
    role_assignment::Entity::delete_many()
        .filter(role_assignment::Column::WorkspaceId.eq(workspace_id))
        .filter(role_assignment::Column::RoleId.eq(id))
        .exec(db)
        .await?;
    role::Entity::delete_many()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .filter(role::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Roles whose parent is `id`.
pub async fn children(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    Ok(role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .filter(role::Column::ParentId.eq(id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

#[derive(Debug, Clone)]
pub struct StoredAssignment {
    pub model: role_assignment::Model,
}

impl StoredAssignment {
    pub fn networks(&self) -> Vec<ipnet::IpNet> {
        self.model.networks.as_array().into_iter().flatten().filter_map(|n| n.as_str()?.parse().ok()).collect()
    }
}

pub struct NewAssignment {
    pub role_id: Uuid,
    pub user_id: Option<Uuid>,
    pub group_id: Option<Uuid>,
    pub valid_from: Option<Now>,
    pub valid_until: Option<Now>,
    pub networks: Vec<ipnet::IpNet>,
    pub require_two_factor: bool,
    pub created_by: Option<Uuid>,
}

pub async fn assign(db: &impl ConnectionTrait, workspace_id: Uuid, a: NewAssignment, now: Now) -> Result<role_assignment::Model, DbErr> {
    role_assignment::ActiveModel {
        id: Set(Uuid::now_v7()),
        workspace_id: Set(workspace_id),
        role_id: Set(a.role_id),
        user_id: Set(a.user_id),
        group_id: Set(a.group_id),
        valid_from: Set(a.valid_from),
        valid_until: Set(a.valid_until),
        networks: Set(json!(a.networks.iter().map(|n| n.to_string()).collect::<Vec<_>>())),
        require_two_factor: Set(a.require_two_factor),
        created_by: Set(a.created_by),
        created_at: Set(now),
    }
    .insert(db)
    .await
}

pub async fn assignment(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<Option<StoredAssignment>, DbErr> {
    Ok(role_assignment::Entity::find_by_id(id)
        .filter(role_assignment::Column::WorkspaceId.eq(workspace_id))
        .one(db)
        .await?
        .map(|model| StoredAssignment { model }))
}

pub async fn unassign(db: &impl ConnectionTrait, workspace_id: Uuid, id: Uuid) -> Result<(), DbErr> {
    role_assignment::Entity::delete_many()
        .filter(role_assignment::Column::WorkspaceId.eq(workspace_id))
        .filter(role_assignment::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Every group a user belongs to: the primary group and the others.
pub async fn group_ids_of(db: &impl ConnectionTrait, workspace_id: Uuid, u: &user::Model) -> Result<Vec<Uuid>, DbErr> {
    let mut ids: Vec<Uuid> = group_member::Entity::find()
        .filter(group_member::Column::WorkspaceId.eq(workspace_id))
        .filter(group_member::Column::UserId.eq(u.id))
        .all(db)
        .await?
        .into_iter()
        .map(|m| m.group_id)
        .collect();
    if let Some(p) = u.primary_group_id
        && !ids.contains(&p)
    {
        ids.push(p);
    }
    ids.sort();
    Ok(ids)
}

/// The assignments that reach a user: their own and those of their groups.
pub async fn assignments_of(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    user_id: Uuid,
    group_ids: &[Uuid],
) -> Result<Vec<Assignment>, DbErr> {
    let rows = role_assignment::Entity::find()
        .filter(role_assignment::Column::WorkspaceId.eq(workspace_id))
        .filter(
            Condition::any()
                .add(role_assignment::Column::UserId.eq(user_id))
                .add(role_assignment::Column::GroupId.is_in(group_ids.iter().copied())),
        )
        .order_by_asc(role_assignment::Column::Id)
        .all(db)
        .await?;
    let group_names: BTreeMap<Uuid, String> = if group_ids.is_empty() {
        BTreeMap::new()
    } else {
        group::Entity::find()
            .filter(group::Column::WorkspaceId.eq(workspace_id))
            .filter(group::Column::Id.is_in(group_ids.iter().copied()))
            .all(db)
            .await?
            .into_iter()
            .map(|g| (g.id, g.name))
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|model| {
            let stored = StoredAssignment { model };
            let via = match stored.model.group_id {
                Some(g) => Via::Group { group_id: g, group: group_names.get(&g).cloned().unwrap_or_default() },
                None => Via::Direct,
            };
            Assignment {
                id: stored.model.id,
                role_id: stored.model.role_id,
                via,
                valid_from: stored.model.valid_from,
                valid_until: stored.model.valid_until,
                networks: stored.networks(),
                require_two_factor: stored.model.require_two_factor,
            }
        })
        .collect())
}

/// Every assignment of a role, a user or a group (for listing).
pub async fn assignments_where(db: &impl ConnectionTrait, workspace_id: Uuid, cond: Condition) -> Result<Vec<StoredAssignment>, DbErr> {
    Ok(role_assignment::Entity::find()
        .filter(role_assignment::Column::WorkspaceId.eq(workspace_id))
        .filter(cond)
        .order_by_asc(role_assignment::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|model| StoredAssignment { model })
        .collect())
}

/// Makes every cached principal of the workspace stale. Call in the same transaction
/// as the change that requires it.
pub async fn bump_epoch(db: &impl ConnectionTrait, workspace_id: Uuid) -> Result<(), DbErr> {
    workspace::Entity::update_many()
        .col_expr(workspace::Column::PermissionEpoch, Expr::col(workspace::Column::PermissionEpoch).add(1))
        .filter(workspace::Column::Id.eq(workspace_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// For each user, the built-in roles (`owner`, `manager`, `staff`, `guest`) among the
/// roles they hold now or later, directly or through a group. `members` maps each user
/// to every group they are in (primary included). Two queries, whatever the count.
pub async fn builtin_roles_held(
    db: &impl ConnectionTrait,
    workspace_id: Uuid,
    members: &HashMap<Uuid, Vec<Uuid>>,
) -> Result<HashMap<Uuid, Vec<String>>, DbErr> {
    let builtin: HashMap<Uuid, String> = role::Entity::find()
        .filter(role::Column::WorkspaceId.eq(workspace_id))
        .filter(role::Column::Builtin.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .filter_map(|r| r.builtin.map(|b| (r.id, b)))
        .collect();
    let groups: BTreeSet<Uuid> = members.values().flatten().copied().collect();
    let rows = role_assignment::Entity::find()
        .filter(role_assignment::Column::WorkspaceId.eq(workspace_id))
        .filter(role_assignment::Column::RoleId.is_in(builtin.keys().copied()))
        .filter(
            Condition::any()
                .add(role_assignment::Column::UserId.is_in(members.keys().copied()))
                .add(role_assignment::Column::GroupId.is_in(groups)),
        )
        .all(db)
        .await?;
    let mut out: HashMap<Uuid, Vec<String>> = HashMap::new();
    for a in rows {
        let Some(name) = builtin.get(&a.role_id) else { continue };
        for (user, user_groups) in members {
            if a.user_id == Some(*user) || a.group_id.is_some_and(|g| user_groups.contains(&g)) {
                out.entry(*user).or_default().push(name.clone());
            }
        }
    }
    Ok(out)
}
