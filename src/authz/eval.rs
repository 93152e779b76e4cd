//! The evaluator: the one function that turns a user's role assignments into what they
//! may do right now.
//!
//! Guarantees (the rules, in order):
//! 1. only assignments active now count: inside their time window, from an allowed
//!    network, in a session that passed two-factor if they require it; each role
//!    brings its ancestors (parent roles) along;
//! 2. permissions are the union of every active grant minus every explicit deny
//!    (deny wins);
//! 3. the scope of a module is the widest scope among the active roles that grant the
//!    module's read permission;
//! 4. the access to a sensitive field is the most permissive level an active role
//!    grants, unless an active role denies that field;
//! 5. restrictions come from the highest-ranked active role;
//! 6. every grant, deny and inactive assignment keeps its cause, so a decision can be
//!    explained.
//!
//! Assumes its inputs belong to one workspace (the caller loads them by workspace id).

use super::catalog::{FieldAccess, Module, Permission, Scope, SensitiveField};
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Restrictions {
    pub data_export: bool,
    pub bulk_operations: bool,
    pub api_access: bool,
    pub max_records_per_request: u32,
}

impl Default for Restrictions {
    /// The most restrictive setting: what a principal without any active role gets.
    fn default() -> Self {
        Self { data_export: false, bulk_operations: false, api_access: false, max_records_per_request: 0 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RoleDef {
    pub id: Uuid,
    pub name: String,
    pub rank: i32,
    pub parent: Option<Uuid>,
    pub permissions: BTreeSet<Permission>,
    pub denies: BTreeSet<Permission>,
    pub scopes: BTreeMap<Module, Scope>,
    pub fields: BTreeMap<SensitiveField, FieldAccess>,
    pub denied_fields: BTreeSet<SensitiveField>,
    pub restrictions: Restrictions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Via {
    Direct,
    Group { group_id: Uuid, group: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    pub id: Uuid,
    pub role_id: Uuid,
    pub via: Via,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_until: Option<DateTime<Utc>>,
    /// Empty: any network.
    pub networks: Vec<IpNet>,
    pub require_two_factor: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct EvalContext {
    pub now: DateTime<Utc>,
    pub ip: Option<IpAddr>,
    pub two_factor: bool,
}

/// Why a grant exists: which role, reached through which assignment (and group), and
/// for inherited grants, which ancestor role holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    pub role_id: Uuid,
    pub role: String,
    pub assignment_id: Uuid,
    pub via: Via,
    pub inherited_from: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Inactive {
    NotYetValid,
    Expired,
    NetworkNotAllowed,
    TwoFactorRequired,
    RoleMissing,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Grants {
    /// Effective permissions (after denies), each with every cause that grants it.
    pub permissions: BTreeMap<Permission, Vec<Cause>>,
    /// Permissions explicitly denied by an active role (they win over grants).
    pub denied: BTreeMap<Permission, Vec<Cause>>,
    /// The grants a deny cancelled, with their causes (to explain both sides).
    pub overridden: BTreeMap<Permission, Vec<Cause>>,
    pub scopes: BTreeMap<Module, (Scope, Vec<Cause>)>,
    pub fields: BTreeMap<SensitiveField, FieldAccess>,
    pub denied_fields: BTreeSet<SensitiveField>,
    pub restrictions: Restrictions,
    /// Rank of the highest active role; 0 without any.
    pub top_rank: i32,
    pub active_roles: Vec<(Uuid, String)>,
    pub inactive: Vec<(Uuid, String, Inactive)>,
}

impl Grants {
    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains_key(&p)
    }

    pub fn scope(&self, m: Module) -> Scope {
        self.scopes.get(&m).map_or(Scope::None, |(s, _)| *s)
    }

    pub fn field(&self, f: SensitiveField) -> FieldAccess {
        if self.denied_fields.contains(&f) {
            return FieldAccess::None;
        }
        self.fields.get(&f).copied().unwrap_or(FieldAccess::None)
    }
}

fn inactive_reason(a: &Assignment, ctx: &EvalContext) -> Option<Inactive> {
    if a.valid_from.is_some_and(|from| ctx.now < from) {
        return Some(Inactive::NotYetValid);
    }
    if a.valid_until.is_some_and(|until| ctx.now >= until) {
        return Some(Inactive::Expired);
    }
    if !a.networks.is_empty() && !ctx.ip.is_some_and(|ip| a.networks.iter().any(|n| n.contains(&ip))) {
        return Some(Inactive::NetworkNotAllowed);
    }
    if a.require_two_factor && !ctx.two_factor {
        return Some(Inactive::TwoFactorRequired);
    }
    None
}

/// The role and its ancestors, nearest first; stops at a cycle or after 8 levels.
pub fn lineage(roles: &HashMap<Uuid, RoleDef>, id: Uuid) -> Vec<&RoleDef> {
    let mut out: Vec<&RoleDef> = Vec::new();
    let mut next = Some(id);
    while let Some(id) = next {
        let Some(role) = roles.get(&id) else { break };
        if out.iter().any(|r| r.id == role.id) || out.len() >= 8 {
            break;
        }
        out.push(role);
        next = role.parent;
    }
    out
}

pub fn evaluate(assignments: &[Assignment], roles: &HashMap<Uuid, RoleDef>, ctx: &EvalContext) -> Grants {
    let mut g = Grants::default();
    let mut granted: BTreeMap<Permission, Vec<Cause>> = BTreeMap::new();
    let mut top: Option<&RoleDef> = None;

    for a in assignments {
        let Some(role) = roles.get(&a.role_id) else {
            g.inactive.push((a.id, String::new(), Inactive::RoleMissing));
            continue;
        };
        if let Some(why) = inactive_reason(a, ctx) {
            g.inactive.push((a.id, role.name.clone(), why));
            continue;
        }
        g.active_roles.push((role.id, role.name.clone()));
        if top.is_none_or(|t| role.rank > t.rank) {
            top = Some(role);
        }
        let chain = lineage(roles, role.id);
        // A role's scopes apply to every module its lineage can read, so a child may
        // widen the scope of a module it reads through its parent.
        let lineage_perms: BTreeSet<Permission> = chain.iter().flat_map(|r| r.permissions.iter().copied()).collect();
        for r in chain {
            let cause = Cause {
                role_id: role.id,
                role: role.name.clone(),
                assignment_id: a.id,
                via: a.via.clone(),
                inherited_from: (r.id != role.id).then(|| r.name.clone()),
            };
            for p in &r.permissions {
                granted.entry(*p).or_default().push(cause.clone());
            }
            for p in &r.denies {
                g.denied.entry(*p).or_default().push(cause.clone());
            }
            for m in Module::ALL {
                let Some(read) = m.read_permission() else { continue };
                let scope = r.scopes.get(m).copied().unwrap_or_default();
                if !lineage_perms.contains(&read) || scope == Scope::None {
                    continue;
                }
                let entry = g.scopes.entry(*m).or_insert((Scope::None, Vec::new()));
                if scope > entry.0 {
                    *entry = (scope, vec![cause.clone()]);
                } else if scope == entry.0 {
                    entry.1.push(cause.clone());
                }
            }
            for (f, level) in &r.fields {
                let e = g.fields.entry(*f).or_default();
                *e = (*e).max(*level);
            }
            g.denied_fields.extend(r.denied_fields.iter().copied());
        }
    }
    let (overridden, permissions): (BTreeMap<_, _>, BTreeMap<_, _>) = granted.into_iter().partition(|(p, _)| g.denied.contains_key(p));
    g.permissions = permissions;
    g.overridden = overridden;
    // A module whose read permission is denied has no scope, whatever grants it.
    g.scopes.retain(|m, _| m.read_permission().is_some_and(|p| g.permissions.contains_key(&p)));
    if let Some(t) = top {
        g.top_rank = t.rank;
        g.restrictions = t.restrictions.clone();
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    fn t(h: u32) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-04T00:00:00Z").unwrap().to_utc() + chrono::Duration::hours(h.into())
    }

    fn role(name: &str, rank: i32, perms: &[Permission], scope: Scope) -> RoleDef {
        RoleDef {
            id: Uuid::now_v7(),
            name: name.into(),
            rank,
            parent: None,
            permissions: perms.iter().copied().collect(),
            denies: BTreeSet::new(),
            scopes: Module::ALL.iter().map(|m| (*m, scope)).collect(),
            fields: BTreeMap::new(),
            denied_fields: BTreeSet::new(),
            restrictions: Restrictions { max_records_per_request: rank as u32, ..Restrictions::default() },
        }
    }

    fn assign(r: &RoleDef) -> Assignment {
        Assignment {
            id: Uuid::now_v7(),
            role_id: r.id,
            via: Via::Direct,
            valid_from: None,
            valid_until: None,
            networks: vec![],
            require_two_factor: false,
        }
    }

    fn ctx(hour: u32, ip: &str, two_factor: bool) -> EvalContext {
        EvalContext { now: t(hour), ip: Some(ip.parse().unwrap()), two_factor }
    }

    fn run(roles: &[RoleDef], assignments: &[Assignment], c: EvalContext) -> Grants {
        let map = roles.iter().map(|r| (r.id, r.clone())).collect();
        evaluate(assignments, &map, &c)
    }

    /// The rules as data: (case, roles and assignments, context) -> expected outcome.
    #[test]
    fn evaluation_rules() {
        let reader = role("Reader", 10, &[CustomersRead, OrdersRead], Scope::Assigned);
        let mut writer = role("Writer", 20, &[CustomersRead, CustomersWrite], Scope::Team);
        writer.fields.insert(SensitiveField::CustomerEmail, FieldAccess::Write);
        writer.restrictions.data_export = true;
        let mut no_delete = role("NoDelete", 5, &[CustomersDelete], Scope::All);
        no_delete.denies.insert(CustomersWrite);
        no_delete.fields.insert(SensitiveField::CustomerEmail, FieldAccess::Masked);
        no_delete.denied_fields.insert(SensitiveField::CustomerPhone);
        let mut masked_phone = role("Phone", 1, &[], Scope::None);
        masked_phone.fields.insert(SensitiveField::CustomerPhone, FieldAccess::Read);
        let mut child = role("Child", 30, &[TicketsRead], Scope::Group);
        child.parent = Some(reader.id);
        let mut deny_read = role("DenyRead", 2, &[], Scope::None);
        deny_read.denies.insert(OrdersRead);
        let all = [reader.clone(), writer.clone(), no_delete.clone(), masked_phone.clone(), child.clone(), deny_read.clone()];

        // Union of grants; the widest scope among roles granting read wins.
        let g = run(&all, &[assign(&reader), assign(&writer)], ctx(1, "10.0.0.1", false));
        assert!(g.has(CustomersRead) && g.has(CustomersWrite) && g.has(OrdersRead) && !g.has(CustomersDelete));
        assert_eq!(g.scope(Module::Customers), Scope::Team);
        assert_eq!(g.scope(Module::Orders), Scope::Assigned);
        assert_eq!(g.scope(Module::Tickets), Scope::None);
        assert_eq!(g.field(SensitiveField::CustomerEmail), FieldAccess::Write);
        assert_eq!(g.field(SensitiveField::CustomerTaxId), FieldAccess::None, "unlisted fields are none");
        // Restrictions come from the highest-ranked role.
        assert_eq!(g.top_rank, 20);
        assert!(g.restrictions.data_export);
        assert_eq!(g.permissions[&CustomersRead].len(), 2, "both causes kept");

        // Deny wins over any grant; a field deny wins over any field grant.
        let g = run(&all, &[assign(&writer), assign(&no_delete), assign(&masked_phone)], ctx(1, "10.0.0.1", false));
        assert!(!g.has(CustomersWrite) && g.has(CustomersDelete) && g.has(CustomersRead));
        assert_eq!(g.denied[&CustomersWrite][0].role, "NoDelete");
        assert_eq!(g.field(SensitiveField::CustomerEmail), FieldAccess::Write, "most permissive level wins");
        assert_eq!(g.field(SensitiveField::CustomerPhone), FieldAccess::None, "field deny wins");
        // A denied read takes the module's scope away.
        let g = run(&all, &[assign(&reader), assign(&deny_read)], ctx(1, "10.0.0.1", false));
        assert!(!g.has(OrdersRead));
        assert_eq!(g.scope(Module::Orders), Scope::None);
        assert_eq!(g.scope(Module::Customers), Scope::Assigned);

        // Inheritance: the child brings its parent's grants, with the cause saying so.
        let g = run(&all, &[assign(&child)], ctx(1, "10.0.0.1", false));
        assert!(g.has(TicketsRead) && g.has(CustomersRead));
        assert_eq!(g.permissions[&CustomersRead][0].inherited_from.as_deref(), Some("Reader"));
        assert_eq!(g.scope(Module::Tickets), Scope::Group);
        assert_eq!(g.scope(Module::Customers), Scope::Group, "the child's own scope for a module it reads through its parent");

        // Group grants carry their group in the cause.
        let mut via_group = assign(&reader);
        via_group.via = Via::Group { group_id: Uuid::nil(), group: "North".into() };
        let g = run(&all, &[via_group], ctx(1, "10.0.0.1", false));
        assert_eq!(g.permissions[&CustomersRead][0].via, Via::Group { group_id: Uuid::nil(), group: "North".into() });

        // Temporary: before, during and after the window.
        let mut temp = assign(&writer);
        temp.valid_from = Some(t(10));
        temp.valid_until = Some(t(20));
        for (hour, active, why) in
            [(9, false, Some(Inactive::NotYetValid)), (10, true, None), (19, true, None), (20, false, Some(Inactive::Expired))]
        {
            let g = run(&all, std::slice::from_ref(&temp), ctx(hour, "10.0.0.1", false));
            assert_eq!(g.has(CustomersWrite), active, "hour {hour}");
            assert_eq!(g.inactive.first().map(|i| i.2), why, "hour {hour}");
        }

        // Conditional: network and two-factor.
        let mut office = assign(&writer);
        office.networks = vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap()];
        for (ip, active) in [("10.1.2.3", true), ("2001:db8::1", true), ("192.0.2.7", false)] {
            assert_eq!(run(&all, std::slice::from_ref(&office), ctx(1, ip, false)).has(CustomersWrite), active, "{ip}");
        }
        let mut strong = assign(&writer);
        strong.require_two_factor = true;
        assert!(!run(&all, std::slice::from_ref(&strong), ctx(1, "10.0.0.1", false)).has(CustomersWrite));
        assert!(run(&all, std::slice::from_ref(&strong), ctx(1, "10.0.0.1", true)).has(CustomersWrite));

        // No active role: nothing at all, rank 0, the most restrictive restrictions.
        let g = run(&all, &[], ctx(1, "10.0.0.1", false));
        assert!(g.permissions.is_empty() && g.top_rank == 0 && g.restrictions == Restrictions::default());
    }

    #[test]
    fn parent_cycles_do_not_hang() {
        let mut a = role("A", 1, &[CustomersRead], Scope::All);
        let mut b = role("B", 1, &[OrdersRead], Scope::All);
        a.parent = Some(b.id);
        b.parent = Some(a.id);
        let g = run(&[a.clone(), b], &[assign(&a)], ctx(1, "10.0.0.1", false));
        assert!(g.has(CustomersRead) && g.has(OrdersRead));
    }
}
