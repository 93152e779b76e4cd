//! Data scopes as SQL: the one place where "which records may this principal reach"
//! becomes a WHERE clause.
//!
//! Guarantees: a `Reach` exists only after the principal was checked for the
//! permission it names (`Reach::for_permission`); every CRM query in `repo` takes a
//! `Reach` and starts from `Reach::condition`, which always pins the workspace and
//! hides soft-deleted records. Scopes above NONE include the principal's own
//! (assigned) records. An out-of-scope record is indistinguishable from a missing one.

use super::catalog::{Module, Permission, Scope};
use super::eval::Grants;
use crate::error::AppError;
use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use uuid::Uuid;

/// What authorization needs to know of whoever acts: the workspace, the grants the
/// evaluator computed for this request, and the place in the organisation. The
/// principal types implement it; authorization never sees how they signed in.
pub trait Acting {
    fn workspace_id(&self) -> Uuid;
    fn grants(&self) -> &Grants;
    fn placement(&self) -> Placement;
}

/// Where the principal stands in the organisation, for scope matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub user_id: Uuid,
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    /// Where new records of this principal are placed.
    pub primary_group_id: Option<Uuid>,
    pub group_ids: Vec<Uuid>,
    /// Who new records of this principal are assigned to: the user themselves, or for
    /// an API key the user who created it (a key owns nothing itself).
    pub new_record_owner: Uuid,
}

/// Proof that a principal may use `permission` on some records of a module, and which.
#[derive(Debug, Clone)]
pub struct Reach {
    workspace_id: Uuid,
    module: Module,
    permission: Permission,
    scope: Scope,
    placement: Placement,
}

impl Reach {
    /// The principal's reach for `permission`: FORBIDDEN without the permission; the
    /// records are those of the module's read scope.
    pub fn for_permission(p: &impl Acting, permission: Permission) -> Result<Self, AppError> {
        let grants = p.grants();
        if !grants.has(permission) {
            return Err(AppError::Forbidden);
        }
        let module = permission.module();
        Ok(Self { workspace_id: p.workspace_id(), module, permission, scope: grants.scope(module), placement: p.placement() })
    }

    /// Whole-workspace reach for command-line bootstrap (the demo seed) only; never
    /// built from a request.
    pub(crate) fn bootstrap(workspace_id: Uuid, module: Module, placement: Placement) -> Self {
        let permission = module.read_permission().unwrap_or(Permission::CustomersRead);
        Self { workspace_id, module, permission, scope: Scope::All, placement }
    }

    pub fn workspace_id(&self) -> Uuid {
        self.workspace_id
    }

    pub fn user_id(&self) -> Uuid {
        self.placement.user_id
    }

    pub fn placement(&self) -> &Placement {
        &self.placement
    }

    pub fn module(&self) -> Module {
        self.module
    }

    pub fn permission(&self) -> Permission {
        self.permission
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The WHERE clause for `table` (any CRM table: they share these column names).
    pub fn condition(&self, table: &'static str) -> Condition {
        let col = |c: &'static str| Expr::col((table, c));
        let base = Condition::all().add(col("workspace_id").eq(self.workspace_id)).add(col("deleted_at").is_null());
        let own = col("owner_id").eq(self.placement.user_id);
        let nothing = Expr::val(1).eq(0);
        let either = |other: Option<sea_orm::sea_query::SimpleExpr>| match other {
            Some(o) => Condition::any().add(own.clone()).add(o),
            None => Condition::any().add(own.clone()),
        };
        match self.scope {
            Scope::None => base.add(nothing),
            Scope::Assigned => base.add(own.clone()),
            Scope::Group => base.add(either(
                (!self.placement.group_ids.is_empty()).then(|| col("group_id").is_in(self.placement.group_ids.iter().copied())),
            )),
            Scope::Team => base.add(either(self.placement.team_id.map(|t| col("team_id").eq(t)))),
            Scope::Department => base.add(either(self.placement.department_id.map(|d| col("department_id").eq(d)))),
            Scope::All => base,
        }
    }
}

/// The same rule as `Reach::condition`, for one record in memory (explanations).
pub fn matches(scope: Scope, who: &Placement, owner: Uuid, department: Option<Uuid>, team: Option<Uuid>, group: Option<Uuid>) -> bool {
    let own = owner == who.user_id;
    match scope {
        Scope::None => false,
        Scope::Assigned => own,
        Scope::Group => own || group.is_some_and(|g| who.group_ids.contains(&g)),
        Scope::Team => own || (team.is_some() && team == who.team_id),
        Scope::Department => own || (department.is_some() && department == who.department_id),
        Scope::All => true,
    }
}
