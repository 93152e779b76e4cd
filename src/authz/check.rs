//! Anti-escalation: what a principal may grant and to whom.
//!
//! Guarantees: nobody creates, edits or assigns a role (with its ancestors) that holds a
//! permission, a scope or a field access they do not hold themselves; nobody creates or
//! edits a role ranked at or above their own top role; nobody acts on a user ranked at
//! or above their own top role (which includes themselves); nobody makes a change after
//! which they would no longer hold roles.write or settings.write they hold now.

use super::catalog::{Module, Permission};
use super::eval::{Assignment, EvalContext, Grants, RoleDef, evaluate, lineage};
use crate::error::AppError;
use std::collections::HashMap;
use uuid::Uuid;

/// Every grant of `role` and its ancestors must be within `actor`'s own grants.
pub fn within_actor(actor: &Grants, roles: &HashMap<Uuid, RoleDef>, role: &RoleDef) -> Result<(), AppError> {
    let mut with_new = roles.clone();
    with_new.insert(role.id, role.clone());
    for r in lineage(&with_new, role.id) {
        if let Some(p) = r.permissions.iter().find(|p| !actor.has(**p)) {
            return Err(AppError::Denied(format!("you cannot grant {} (you do not hold it)", p.as_str())));
        }
        for (m, s) in &r.scopes {
            let readable = m.read_permission().is_some_and(|p| r.permissions.contains(&p));
            if readable && *s > actor.scope(*m) {
                return Err(AppError::Denied(format!(
                    "you cannot grant a {:?} scope on {} (yours is {:?})",
                    s,
                    m.as_str(),
                    actor.scope(*m)
                )));
            }
        }
        for (f, level) in &r.fields {
            if *level > actor.field(*f) {
                return Err(AppError::Denied(format!(
                    "you cannot grant {:?} access to {} (yours is {:?})",
                    level,
                    f.key(),
                    actor.field(*f)
                )));
            }
        }
        if r.restrictions.data_export && !actor.restrictions.data_export
            || r.restrictions.bulk_operations && !actor.restrictions.bulk_operations
            || r.restrictions.api_access && !actor.restrictions.api_access
            || r.restrictions.max_records_per_request > actor.restrictions.max_records_per_request
        {
            return Err(AppError::Denied("you cannot grant restrictions looser than your own".into()));
        }
    }
    Ok(())
}

pub fn rank_below_actor(actor: &Grants, rank: i32, what: &str) -> Result<(), AppError> {
    if rank >= actor.top_rank {
        return Err(AppError::Denied(format!("{what} is ranked at or above your own top role")));
    }
    Ok(())
}

/// The rank a user holds: the highest rank among every role assigned to them, active or
/// not (a conditional Owner is still an Owner to act on).
pub fn rank_of(assignments: &[Assignment], roles: &HashMap<Uuid, RoleDef>) -> i32 {
    assignments.iter().filter_map(|a| roles.get(&a.role_id)).map(|r| r.rank).max().unwrap_or(0)
}

/// Refuses a change that would take roles.write or settings.write away from the actor.
pub fn keeps_own_admin_access(
    before: &Grants,
    after_assignments: &[Assignment],
    after_roles: &HashMap<Uuid, RoleDef>,
    ctx: &EvalContext,
) -> Result<(), AppError> {
    let after = evaluate(after_assignments, after_roles, ctx);
    for p in [Permission::RolesWrite, Permission::SettingsWrite] {
        if before.has(p) && !after.has(p) {
            return Err(AppError::Denied(format!("this change would remove your own {}", p.as_str())));
        }
    }
    Ok(())
}

/// Modules whose records a role can reach (for listing in explanations).
pub fn readable_modules(g: &Grants) -> Vec<Module> {
    Module::ALL.iter().copied().filter(|m| m.read_permission().is_some_and(|p| g.has(p))).collect()
}
