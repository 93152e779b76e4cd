//! The built-in roles every workspace starts with. Owner holds everything and cannot
//! be edited; the others are ordinary data once created and can be changed.
//!
//! - Owner: everything, every record, every field.
//! - Manager: team configuration and user management, analytics, customer data and
//!   orders across the department; may assign roles below Manager; no billing or
//!   settings.
//! - Staff: their assigned customers and work (read/write), reports read-only, no team
//!   management, no settings.
//! - Guest: read-only, assigned records only, no sensitive fields, no export.

use super::catalog::{FieldAccess, Module, Permission, Scope, SensitiveField};
use super::eval::Restrictions;
use std::collections::{BTreeMap, BTreeSet};

// The four roles every workspace starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, async_graphql::Enum)]
pub enum BuiltinRole {
    Guest,
    Staff,
    Manager,
    Owner,
}

impl BuiltinRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Manager => "manager",
            Self::Staff => "staff",
            Self::Guest => "guest",
        }
    }

    /// Unknown values read as the least privileged role.
    pub fn parse(s: &str) -> Self {
        match s {
            "owner" => Self::Owner,
            "manager" => Self::Manager,
            "staff" => Self::Staff,
            _ => Self::Guest,
        }
    }
}

pub struct BuiltinSpec {
    pub builtin: BuiltinRole,
    pub name: &'static str,
    pub description: &'static str,
    pub rank: i32,
    pub permissions: BTreeSet<Permission>,
    pub scopes: BTreeMap<Module, Scope>,
    pub fields: BTreeMap<SensitiveField, FieldAccess>,
    pub restrictions: Restrictions,
}

pub const OWNER_RANK: i32 = 100;

impl BuiltinSpec {
    pub fn def(&self, id: uuid::Uuid) -> super::eval::RoleDef {
        super::eval::RoleDef {
            id,
            name: self.name.to_owned(),
            rank: self.rank,
            parent: None,
            permissions: self.permissions.clone(),
            denies: BTreeSet::new(),
            scopes: self.scopes.clone(),
            fields: self.fields.clone(),
            denied_fields: BTreeSet::new(),
            restrictions: self.restrictions.clone(),
        }
    }
}

const DATA_MODULES: &[Module] = &[
    Module::Customers,
    Module::Products,
    Module::Orders,
    Module::Payments,
    Module::Quotes,
    Module::Tickets,
    Module::Jobs,
    Module::Invoices,
];

fn perms(list: &[&str]) -> BTreeSet<Permission> {
    Permission::ALL
        .iter()
        .copied()
        .filter(|p| list.iter().any(|l| *l == p.as_str() || l.strip_suffix(".*") == Some(p.module().as_str())))
        .collect()
}

fn fields(list: &[(SensitiveField, FieldAccess)]) -> BTreeMap<SensitiveField, FieldAccess> {
    list.iter().copied().collect()
}

pub fn specs() -> Vec<BuiltinSpec> {
    use FieldAccess::*;
    use SensitiveField::*;
    vec![
        BuiltinSpec {
            builtin: BuiltinRole::Owner,
            name: "Owner",
            description: "Everything, including billing, settings and roles.",
            rank: OWNER_RANK,
            permissions: Permission::ALL.iter().copied().collect(),
            scopes: Module::ALL.iter().map(|m| (*m, Scope::All)).collect(),
            fields: SensitiveField::ALL.iter().map(|f| (*f, Write)).collect(),
            restrictions: Restrictions { data_export: true, bulk_operations: true, api_access: true, max_records_per_request: 1_000_000 },
        },
        BuiltinSpec {
            builtin: BuiltinRole::Manager,
            name: "Manager",
            description: "Team and user management, analytics, customer data and orders of the department.",
            rank: 75,
            permissions: perms(&[
                "customers.*",
                "orders.*",
                "quotes.*",
                "tickets.*",
                "jobs.*",
                "invoices.*",
                "products.read",
                "payments.read",
                "reports.*",
                "analytics.*",
                "team.*",
                "roles.*",
            ]),
            scopes: DATA_MODULES.iter().map(|m| (*m, if *m == Module::Products { Scope::All } else { Scope::Department })).collect(),
            fields: fields(&[
                (CustomerEmail, Write),
                (CustomerPhone, Write),
                (CustomerTaxId, Read),
                (CustomerNotes, Write),
                (CustomerCreditLimit, Read),
                (ProductCostPrice, Masked),
                (ProductSupplier, Read),
                (OrderInternalNotes, Write),
                (PaymentCardLast4, Read),
                (PaymentIban, Masked),
                (PaymentPayerEmail, Read),
                (InvoiceBankDetails, Masked),
                (TicketInternalNotes, Write),
                (UserEmail, Write),
                (UserPhone, Write),
                (UserLastLoginIp, Masked),
            ]),
            restrictions: Restrictions { data_export: true, bulk_operations: true, api_access: true, max_records_per_request: 500 },
        },
        BuiltinSpec {
            builtin: BuiltinRole::Staff,
            name: "Staff",
            description: "Their assigned customers and work; reports read-only.",
            rank: 50,
            permissions: perms(&[
                "customers.read",
                "customers.write",
                "orders.read",
                "orders.write",
                "quotes.*",
                "tickets.*",
                "jobs.*",
                "invoices.read",
                "products.read",
                "reports.read",
                "team.read",
            ]),
            scopes: DATA_MODULES.iter().map(|m| (*m, if *m == Module::Products { Scope::All } else { Scope::Assigned })).collect(),
            fields: fields(&[
                (CustomerEmail, Write),
                (CustomerPhone, Write),
                (CustomerTaxId, Masked),
                (CustomerNotes, Write),
                (CustomerCreditLimit, Masked),
                (OrderInternalNotes, Read),
                (InvoiceBankDetails, Masked),
                (TicketInternalNotes, Write),
                (UserEmail, Masked),
                (UserPhone, Masked),
            ]),
            restrictions: Restrictions { data_export: false, bulk_operations: false, api_access: false, max_records_per_request: 100 },
        },
        BuiltinSpec {
            builtin: BuiltinRole::Guest,
            name: "Guest",
            description: "Read-only, assigned records only, no sensitive fields, no export.",
            rank: 10,
            permissions: perms(&[
                "customers.read",
                "orders.read",
                "quotes.read",
                "tickets.read",
                "jobs.read",
                "invoices.read",
                "products.read",
            ]),
            scopes: DATA_MODULES.iter().map(|m| (*m, Scope::Assigned)).collect(),
            fields: BTreeMap::new(),
            restrictions: Restrictions { data_export: false, bulk_operations: false, api_access: false, max_records_per_request: 50 },
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roles_match_their_descriptions() {
        let specs = specs();
        let by = |b: BuiltinRole| specs.iter().find(|s| s.builtin == b).unwrap();
        let (owner, manager, staff, guest) =
            (by(BuiltinRole::Owner), by(BuiltinRole::Manager), by(BuiltinRole::Staff), by(BuiltinRole::Guest));
        assert_eq!(owner.permissions.len(), Permission::ALL.len());
        assert!(owner.rank > manager.rank && manager.rank > staff.rank && staff.rank > guest.rank);
        for p in [Permission::BillingRead, Permission::SettingsWrite, Permission::SettingsRead] {
            assert!(!manager.permissions.contains(&p), "manager has {p:?}");
        }
        assert!(manager.permissions.contains(&Permission::RolesWrite) && manager.permissions.contains(&Permission::TeamWrite));
        assert!(!staff.permissions.contains(&Permission::TeamWrite) && !staff.permissions.contains(&Permission::SettingsRead));
        assert!(staff.permissions.contains(&Permission::ReportsRead) && !staff.permissions.contains(&Permission::ReportsCreate));
        assert_eq!(staff.scopes[&Module::Customers], Scope::Assigned);
        assert!(guest.permissions.iter().all(|p| p.as_str().ends_with(".read")), "guest is read-only");
        assert!(guest.fields.is_empty() && !guest.restrictions.data_export);
        assert!(guest.scopes.values().all(|s| *s == Scope::Assigned));
    }
}
