//! Roles, assignments, effective access and explanations.

use super::context::{meta, principal, state};
use super::convert::parse_id;
use crate::audit::Tx;
use crate::auth::{BuiltinRole, Principal, UserPrincipal};
use crate::authz::catalog::{FieldAccess, Module, Permission, Scope, SensitiveField};
use crate::authz::eval::{Cause, EvalContext, Grants, Inactive, Restrictions as EvalRestrictions};
use crate::authz::scope::{Placement, Reach, matches};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::repo::roles::StoredRole;
use crate::service::roles::{self as svc, AssignInput, RoleInput as SvcRoleInput};
use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};

fn user_principal<'a>(ctx: &Context<'a>) -> AppResult<&'a UserPrincipal> {
    match principal(ctx) {
        Principal::User(u) => Ok(u),
        _ => Err(AppError::Forbidden),
    }
}

#[derive(SimpleObject, Clone)]
pub struct ModuleScope {
    pub module: Module,
    pub scope: Scope,
}

#[derive(SimpleObject, Clone)]
pub struct FieldGrant {
    pub field: SensitiveField,
    pub access: FieldAccess,
}

#[derive(SimpleObject, InputObject, Clone)]
#[graphql(input_name = "RestrictionsInput")]
pub struct Restrictions {
    pub data_export: bool,
    pub bulk_operations: bool,
    pub api_access: bool,
    pub max_records_per_request: i32,
}

impl From<&EvalRestrictions> for Restrictions {
    fn from(r: &EvalRestrictions) -> Self {
        Self {
            data_export: r.data_export,
            bulk_operations: r.bulk_operations,
            api_access: r.api_access,
            max_records_per_request: i32::try_from(r.max_records_per_request).unwrap_or(i32::MAX),
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct RoleRef {
    pub id: ID,
    pub name: String,
}

/// What the signed-in user may do right now, so a client can adapt its screens.
#[derive(SimpleObject)]
pub struct EffectiveAccess {
    pub permissions: Vec<Permission>,
    /// Data scope per module the user can read.
    pub scopes: Vec<ModuleScope>,
    /// Access to every sensitive field (NONE included).
    pub fields: Vec<FieldGrant>,
    pub restrictions: Restrictions,
    pub roles: Vec<RoleRef>,
    /// Rank of the highest active role.
    pub rank: i32,
}

impl From<&Grants> for EffectiveAccess {
    fn from(g: &Grants) -> Self {
        Self {
            permissions: g.permissions.keys().copied().collect(),
            scopes: Module::ALL
                .iter()
                .filter(|m| m.read_permission().is_some())
                .map(|m| ModuleScope { module: *m, scope: g.scope(*m) })
                .collect(),
            fields: SensitiveField::ALL.iter().map(|f| FieldGrant { field: *f, access: g.field(*f) }).collect(),
            restrictions: (&g.restrictions).into(),
            roles: g.active_roles.iter().map(|(id, name)| RoleRef { id: ID(id.to_string()), name: name.clone() }).collect(),
            rank: g.top_rank,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Role {
    pub id: ID,
    pub name: String,
    pub description: String,
    /// Set for the four built-in roles.
    pub builtin: Option<BuiltinRole>,
    pub rank: i32,
    pub parent_id: Option<ID>,
    pub permissions: Vec<Permission>,
    pub denies: Vec<Permission>,
    pub scopes: Vec<ModuleScope>,
    pub fields: Vec<FieldGrant>,
    pub denied_fields: Vec<SensitiveField>,
    pub restrictions: Restrictions,
    /// False for Owner, which nobody can change.
    pub editable: bool,
    /// What in this definition has no effect: a permission both granted and denied (the
    /// deny wins), a field given access and denied (the deny wins).
    pub warnings: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[async_graphql::ComplexObject]
impl Role {
    /// This role's audit entries (created, changed, deleted), newest first.
    async fn history(&self, ctx: &Context<'_>) -> AppResult<Vec<super::audit::AuditEntry>> {
        let p = user_principal(ctx)?;
        super::history::of(ctx, p.workspace_id, parse_id("id", &self.id)?).await
    }
}

impl From<StoredRole> for Role {
    fn from(r: StoredRole) -> Self {
        let d = r.def;
        let mut warnings: Vec<String> =
            d.permissions.intersection(&d.denies).map(|p| format!("{} is both granted and denied; the deny wins", p.as_str())).collect();
        warnings.extend(
            d.fields
                .keys()
                .filter(|f| d.denied_fields.contains(f))
                .map(|f| format!("{} is both given access and denied; the deny wins", f.key())),
        );
        Self {
            warnings,
            id: ID(d.id.to_string()),
            name: d.name,
            description: r.description,
            editable: r.builtin.as_deref() != Some("owner"),
            builtin: r.builtin.as_deref().map(BuiltinRole::parse),
            rank: d.rank,
            parent_id: d.parent.map(|p| ID(p.to_string())),
            permissions: d.permissions.into_iter().collect(),
            denies: d.denies.into_iter().collect(),
            scopes: d.scopes.into_iter().map(|(module, scope)| ModuleScope { module, scope }).collect(),
            fields: d.fields.into_iter().map(|(field, access)| FieldGrant { field, access }).collect(),
            denied_fields: d.denied_fields.into_iter().collect(),
            restrictions: (&d.restrictions).into(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(InputObject)]
pub struct ModuleScopeInput {
    pub module: Module,
    pub scope: Scope,
}

#[derive(InputObject)]
pub struct FieldGrantInput {
    pub field: SensitiveField,
    pub access: FieldAccess,
}

#[derive(InputObject)]
pub struct RoleInput {
    pub name: String,
    #[graphql(default)]
    pub description: String,
    /// 1..99; must be below your own top role.
    pub rank: i32,
    pub parent_id: Option<ID>,
    #[graphql(default)]
    pub permissions: Vec<Permission>,
    /// Explicit denies: they win over any grant, from any role.
    #[graphql(default)]
    pub denies: Vec<Permission>,
    #[graphql(default)]
    pub scopes: Vec<ModuleScopeInput>,
    #[graphql(default)]
    pub fields: Vec<FieldGrantInput>,
    #[graphql(default)]
    pub denied_fields: Vec<SensitiveField>,
    pub restrictions: Option<Restrictions>,
}

impl RoleInput {
    fn into_service(self) -> AppResult<SvcRoleInput> {
        let r = self.restrictions.unwrap_or(Restrictions {
            data_export: false,
            bulk_operations: false,
            api_access: false,
            max_records_per_request: 50,
        });
        let max = u32::try_from(r.max_records_per_request)
            .map_err(|_| AppError::bad_input("restrictions.maxRecordsPerRequest", "must not be negative"))?;
        Ok(SvcRoleInput {
            name: self.name,
            description: self.description,
            rank: self.rank,
            parent_id: self.parent_id.as_ref().map(|p| parse_id("parentId", p)).transpose()?,
            permissions: self.permissions.into_iter().collect(),
            denies: self.denies.into_iter().collect(),
            scopes: self.scopes.into_iter().map(|s| (s.module, s.scope)).collect(),
            fields: self.fields.into_iter().map(|f| (f.field, f.access)).collect(),
            denied_fields: self.denied_fields.into_iter().collect(),
            restrictions: EvalRestrictions {
                data_export: r.data_export,
                bulk_operations: r.bulk_operations,
                api_access: r.api_access,
                max_records_per_request: max,
            },
        })
    }
}

#[derive(SimpleObject)]
pub struct RoleAssignment {
    pub id: ID,
    pub role_id: ID,
    pub user_id: Option<ID>,
    pub group_id: Option<ID>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// CIDRs the assignment is limited to; empty means any network.
    pub networks: Vec<String>,
    pub require_two_factor: bool,
    pub created_at: DateTime<Utc>,
}

impl From<entity::role_assignment::Model> for RoleAssignment {
    fn from(a: entity::role_assignment::Model) -> Self {
        Self {
            id: ID(a.id.to_string()),
            role_id: ID(a.role_id.to_string()),
            user_id: a.user_id.map(|u| ID(u.to_string())),
            group_id: a.group_id.map(|g| ID(g.to_string())),
            valid_from: a.valid_from,
            valid_until: a.valid_until,
            networks: a.networks.as_array().into_iter().flatten().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
            require_two_factor: a.require_two_factor,
            created_at: a.created_at,
        }
    }
}

#[derive(InputObject)]
pub struct AssignRoleInput {
    pub role_id: ID,
    /// Exactly one of userId and groupId.
    pub user_id: Option<ID>,
    pub group_id: Option<ID>,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Only from these CIDRs (IPv4 or IPv6); empty for any network.
    #[graphql(default)]
    pub networks: Vec<String>,
    /// Only in sessions that passed two-factor.
    #[graphql(default)]
    pub require_two_factor: bool,
}

/// One link in the chain of reasons behind a decision.
#[derive(SimpleObject)]
pub struct AccessReason {
    /// GRANT, DENY, OVERRIDDEN_GRANT (a grant a deny cancels), SCOPE, INACTIVE, NO_GRANT
    pub kind: String,
    pub role: Option<String>,
    /// "direct assignment" or "group <name>"
    pub via: Option<String>,
    pub inherited_from: Option<String>,
    pub detail: String,
}

#[derive(SimpleObject)]
pub struct AccessExplanation {
    /// The permission is held and, when a record was named, the record is in scope.
    pub allowed: bool,
    pub permission: Permission,
    /// The user's scope on the permission's module, when it has records.
    pub scope: Option<Scope>,
    /// Whether the named record is within that scope.
    pub record_in_scope: Option<bool>,
    pub reasons: Vec<AccessReason>,
}

fn reason(kind: &str, c: &Cause, detail: String) -> AccessReason {
    AccessReason {
        kind: kind.into(),
        role: Some(c.role.clone()),
        via: Some(svc::via_label(&c.via)),
        inherited_from: c.inherited_from.clone(),
        detail,
    }
}

pub fn explain(g: &Grants, p: Permission) -> AccessExplanation {
    let mut reasons = Vec::new();
    for c in g.denied.get(&p).into_iter().flatten() {
        reasons.push(reason("DENY", c, format!("{} explicitly denies {}", c.role, p.as_str())));
    }
    for c in g.permissions.get(&p).into_iter().flatten() {
        reasons.push(reason("GRANT", c, format!("{} grants {}", c.role, p.as_str())));
    }
    for c in g.overridden.get(&p).into_iter().flatten() {
        reasons.push(reason("OVERRIDDEN_GRANT", c, format!("{} grants {}, but a deny overrides it", c.role, p.as_str())));
    }
    let scope = p.module().read_permission().map(|_| g.scope(p.module()));
    if let Some((s, causes)) = g.scopes.get(&p.module()) {
        for c in causes {
            reasons.push(reason("SCOPE", c, format!("{} reaches {:?} records of {}", c.role, s, p.module().as_str())));
        }
    }
    for (_, role, why) in &g.inactive {
        let detail = match why {
            Inactive::NotYetValid => "assignment not valid yet",
            Inactive::Expired => "assignment expired",
            Inactive::NetworkNotAllowed => "assignment limited to other networks",
            Inactive::TwoFactorRequired => "assignment requires a two-factor session",
            Inactive::RoleMissing => "assigned role no longer exists",
        };
        reasons.push(AccessReason {
            kind: "INACTIVE".into(),
            role: Some(role.clone()),
            via: None,
            inherited_from: None,
            detail: detail.into(),
        });
    }
    let allowed = g.has(p);
    if !allowed && !g.denied.contains_key(&p) {
        reasons.push(AccessReason {
            kind: "NO_GRANT".into(),
            role: None,
            via: None,
            inherited_from: None,
            detail: format!("no active role grants {}", p.as_str()),
        });
    }
    AccessExplanation { allowed, permission: p, scope, record_in_scope: None, reasons }
}

/// Adds the scope check of one record to an explanation, using the same rule as the
/// SQL condition (`authz::scope::matches`).
fn explain_record(
    e: &mut AccessExplanation,
    who: &Placement,
    record: (uuid::Uuid, Option<uuid::Uuid>, Option<uuid::Uuid>, Option<uuid::Uuid>),
) {
    let scope = e.scope.unwrap_or(Scope::None);
    let (owner, department, team, group) = record;
    let inside = matches(scope, who, owner, department, team, group);
    let how = if owner == who.user_id {
        "the record is assigned to the user".to_owned()
    } else {
        format!("the record is {} the user's {:?} scope", if inside { "within" } else { "outside" }, scope)
    };
    e.reasons.push(AccessReason {
        kind: if inside { "SCOPE_MATCH" } else { "SCOPE_MISMATCH" }.into(),
        role: None,
        via: None,
        inherited_from: None,
        detail: how,
    });
    e.record_in_scope = Some(inside);
    e.allowed = e.allowed && inside;
}

#[derive(Default)]
pub struct RolesQuery;

#[Object]
impl RolesQuery {
    /// Every role of the workspace, highest rank first.
    async fn roles(&self, ctx: &Context<'_>) -> AppResult<Vec<Role>> {
        let u = user_principal(ctx)?;
        Ok(repo::roles::all(&state(ctx)?.db, u.workspace_id).await?.into_iter().map(Role::from).collect())
    }

    async fn role(&self, ctx: &Context<'_>, id: ID) -> AppResult<Role> {
        let u = user_principal(ctx)?;
        let id = parse_id("id", &id)?;
        Ok(repo::roles::get(&state(ctx)?.db, u.workspace_id, id).await?.ok_or(AppError::NotFound)?.into())
    }

    /// Assignments, optionally only those of one user, group or role.
    async fn role_assignments(
        &self,
        ctx: &Context<'_>,
        user_id: Option<ID>,
        group_id: Option<ID>,
        role_id: Option<ID>,
    ) -> AppResult<Vec<RoleAssignment>> {
        use entity::role_assignment::Column as C;
        use sea_orm::ColumnTrait;
        let u = user_principal(ctx)?;
        let mut cond = sea_orm::sea_query::Condition::all();
        if let Some(id) = user_id {
            cond = cond.add(C::UserId.eq(parse_id("userId", &id)?));
        }
        if let Some(id) = group_id {
            cond = cond.add(C::GroupId.eq(parse_id("groupId", &id)?));
        }
        if let Some(id) = role_id {
            cond = cond.add(C::RoleId.eq(parse_id("roleId", &id)?));
        }
        let rows = repo::roles::assignments_where(&state(ctx)?.db, u.workspace_id, cond).await?;
        Ok(rows.into_iter().map(|a| a.model.into()).collect())
    }

    /// Whether a user holds a permission right now, and why. Conditions are evaluated
    /// as for a request from `ip` (default: no network) with or without two-factor.
    async fn explain_access(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        permission: Permission,
        record_id: Option<ID>,
        ip: Option<String>,
        two_factor: Option<bool>,
    ) -> AppResult<AccessExplanation> {
        let u = user_principal(ctx)?;
        let target = parse_id("userId", &user_id)?;
        let asked = serde_json::json!({ "permission": permission.as_str(), "recordId": record_id.as_ref().map(|r| r.to_string()) });
        let result = explain_access(ctx, u, target, permission, record_id, ip, two_factor).await;
        // Who looked into whose access is on the record, with the answer they got.
        if let Ok(rs) = ctx.data::<std::sync::Arc<super::gate::RequestState>>() {
            rs.note_read(crate::audit::AuditEvent::Record {
                workspace_id: u.workspace_id,
                action: "access.explained",
                module: "roles",
                target_type: "user",
                id: target,
                changes: serde_json::json!({
                    "question": crate::audit::change(serde_json::Value::Null, asked),
                    "allowed": crate::audit::change(serde_json::Value::Null, result.as_ref().ok().map(|e| e.allowed)),
                }),
            });
        }
        result
    }
}

async fn explain_access(
    ctx: &Context<'_>,
    u: &UserPrincipal,
    target: uuid::Uuid,
    permission: Permission,
    record_id: Option<ID>,
    ip: Option<String>,
    two_factor: Option<bool>,
) -> AppResult<AccessExplanation> {
    let state = state(ctx)?;
    let (user, ws) = repo::users::get_with_workspace(&state.db, u.workspace_id, target).await?.ok_or(AppError::NotFound)?;
    let ip = ip.map(|i| i.parse().map_err(|_| AppError::bad_input("ip", "is not an IP address"))).transpose()?;
    let ectx = EvalContext { now: state.clock.now(), ip, two_factor: two_factor.unwrap_or(false) };
    let loaded = state.grants.grants(&state.db, &user, &ws, &ectx).await?;
    let mut e = explain(&loaded.grants, permission);
    if let Some(rid) = record_id {
        let rid = parse_id("recordId", &rid)?;
        // The record must be one the caller may read themselves: explaining must not
        // reveal records outside the caller's own scope.
        let module = permission.module();
        let read =
            module.read_permission().ok_or_else(|| AppError::bad_input("recordId", format!("{} has no records", module.as_str())))?;
        let caller = Reach::for_permission(u, read).map_err(|_| AppError::NotFound)?;
        let db = &state.db;
        let record = match module {
            Module::Customers => repo::crm::placement::<entity::customer::Entity>(db, &caller, rid).await,
            Module::Products => repo::crm::placement::<entity::product::Entity>(db, &caller, rid).await,
            Module::Orders => repo::crm::placement::<entity::order::Entity>(db, &caller, rid).await,
            Module::Tickets => repo::crm::placement::<entity::ticket::Entity>(db, &caller, rid).await,
            Module::Payments => repo::crm::placement::<entity::payment::Entity>(db, &caller, rid).await,
            Module::Quotes => repo::crm::placement::<entity::quote::Entity>(db, &caller, rid).await,
            Module::Jobs => repo::crm::placement::<entity::job::Entity>(db, &caller, rid).await,
            Module::Invoices => repo::crm::placement::<entity::invoice::Entity>(db, &caller, rid).await,
            other => return Err(AppError::bad_input("recordId", format!("{} has no records", other.as_str()))),
        }?;
        let record = record.ok_or(AppError::NotFound)?;
        let who = Placement {
            user_id: user.id,
            department_id: user.department_id,
            team_id: user.team_id,
            primary_group_id: user.primary_group_id,
            group_ids: loaded.group_ids.to_vec(),
            new_record_owner: user.id,
        };
        explain_record(&mut e, &who, record);
    }
    Ok(e)
}

#[derive(Default)]
pub struct RolesMutation;

#[Object]
impl RolesMutation {
    /// Creates a custom role. It may hold only what you hold, ranked below your top role.
    async fn create_role(&self, ctx: &Context<'_>, input: RoleInput) -> AppResult<Role> {
        let (state, tx, u) = (state(ctx)?, Tx::current(ctx)?, user_principal(ctx)?);
        Ok(svc::create_role(state, &tx, u, input.into_service()?).await?.into())
    }

    /// Replaces a role's definition (not Owner's).
    async fn update_role(&self, ctx: &Context<'_>, id: ID, input: RoleInput) -> AppResult<Role> {
        let (state, tx, u, meta) = (state(ctx)?, Tx::current(ctx)?, user_principal(ctx)?, meta(ctx)?);
        let id = parse_id("id", &id)?;
        Ok(svc::update_role(state, &tx, u, id, input.into_service()?, meta.ip).await?.into())
    }

    /// Deletes a custom role and its assignments.
    async fn delete_role(&self, ctx: &Context<'_>, id: ID) -> AppResult<bool> {
        let (state, tx, u, meta) = (state(ctx)?, Tx::current(ctx)?, user_principal(ctx)?, meta(ctx)?);
        svc::delete_role(state, &tx, u, parse_id("id", &id)?, meta.ip).await?;
        Ok(true)
    }

    /// Gives a role to a user or a group, possibly temporary or conditional.
    async fn assign_role(&self, ctx: &Context<'_>, input: AssignRoleInput) -> AppResult<RoleAssignment> {
        let (state, tx, u) = (state(ctx)?, Tx::current(ctx)?, user_principal(ctx)?);
        let input = AssignInput {
            role_id: parse_id("roleId", &input.role_id)?,
            user_id: input.user_id.as_ref().map(|i| parse_id("userId", i)).transpose()?,
            group_id: input.group_id.as_ref().map(|i| parse_id("groupId", i)).transpose()?,
            valid_from: input.valid_from,
            valid_until: input.valid_until,
            networks: input.networks,
            require_two_factor: input.require_two_factor,
        };
        Ok(svc::assign_role(state, &tx, u, input).await?.into())
    }

    /// Removes an assignment.
    async fn unassign_role(&self, ctx: &Context<'_>, id: ID) -> AppResult<bool> {
        let (tx, u) = (Tx::current(ctx)?, user_principal(ctx)?);
        svc::unassign_role(state(ctx)?, &tx, u, parse_id("id", &id)?).await?;
        Ok(true)
    }
}
