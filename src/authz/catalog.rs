//! The closed vocabulary of authorization: modules, permissions, data scopes, field
//! access levels and the sensitive fields with their masks. Nothing outside these
//! enums can be granted, so a typo in a role is a parse error, not a silent no-op.

use async_graphql::Enum;
use serde::{Deserialize, Serialize};

macro_rules! catalog {
    ($( $module:ident $mod_str:literal { $( $perm:ident $perm_str:literal ),* $(,)? } )*) => {
        /// A functional area of the product.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enum, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Module { $( $module ),* }

        impl Module {
            pub const ALL: &'static [Module] = &[ $( Module::$module ),* ];
            pub fn as_str(self) -> &'static str {
                match self { $( Module::$module => $mod_str ),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $mod_str => Some(Module::$module), )* _ => None }
            }
        }

        /// A permission: one action on one module (`module.action`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enum)]
        pub enum Permission { $( $( $perm ),* ),* }

        impl Permission {
            pub const ALL: &'static [Permission] = &[ $( $( Permission::$perm ),* ),* ];
            pub fn as_str(self) -> &'static str {
                match self { $( $( Permission::$perm => concat!($mod_str, ".", $perm_str) ),* ),* }
            }
            pub fn module(self) -> Module {
                match self { $( $( Permission::$perm => Module::$module ),* ),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|p| p.as_str() == s)
            }
        }
    };
}

catalog! {
    Customers "customers" { CustomersRead "read", CustomersWrite "write", CustomersDelete "delete", CustomersExport "export", CustomersImport "import" }
    Products "products" { ProductsRead "read", ProductsWrite "write", ProductsDelete "delete", ProductsPricing "pricing", ProductsInventory "inventory" }
    Orders "orders" { OrdersRead "read", OrdersWrite "write", OrdersProcess "process", OrdersRefund "refund", OrdersCancel "cancel" }
    Payments "payments" { PaymentsRead "read", PaymentsProcess "process", PaymentsRefund "refund", PaymentsReconcile "reconcile", PaymentsExport "export" }
    Quotes "quotes" { QuotesRead "read", QuotesWrite "write" }
    Tickets "tickets" { TicketsRead "read", TicketsWrite "write" }
    Jobs "jobs" { JobsRead "read", JobsWrite "write" }
    Invoices "invoices" { InvoicesRead "read", InvoicesWrite "write" }
    Reports "reports" { ReportsRead "read", ReportsCreate "create" }
    Analytics "analytics" { AnalyticsRead "read", AnalyticsExport "export", AnalyticsAdvanced "advanced" }
    Team "team" { TeamRead "read", TeamWrite "write" }
    Roles "roles" { RolesRead "read", RolesWrite "write" }
    Settings "settings" { SettingsRead "read", SettingsWrite "write" }
    Billing "billing" { BillingRead "read", BillingWrite "write" }
    Audit "audit" { AuditRead "read", AuditExport "export" }
    Apikeys "apikeys" { ApikeysWrite "write" }
}

impl Module {
    /// The permission that opens a module's records for reading; scopes hang off it.
    pub fn read_permission(self) -> Option<Permission> {
        Permission::ALL.iter().copied().find(|p| p.module() == self && p.as_str().ends_with(".read"))
    }
}

/// Which records of a module a role reaches. Ordered from narrowest to widest; when
/// several roles grant a module, the widest scope wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    None,
    /// Records whose owner (assigned user) is the principal.
    Assigned,
    /// Records of a group the principal belongs to (primary or other).
    Group,
    /// Records of the principal's team.
    Team,
    /// Records of the principal's department.
    Department,
    All,
}

/// What a role may do with one sensitive field. Ordered: none < masked < read < write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enum, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FieldAccess {
    #[default]
    None,
    Masked,
    Read,
    Write,
}

/// How a sensitive value is partially shown at `MASKED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mask {
    /// `•••@example.com`
    EmailDomain,
    /// `•••1234`
    Last4,
    /// `•••` (present, content hidden)
    Hidden,
    /// The order of magnitude only: `1000-9999`.
    Magnitude,
}

impl Mask {
    pub fn apply(self, value: &str) -> String {
        match self {
            Self::EmailDomain => match value.rsplit_once('@') {
                Some((_, domain)) => format!("•••@{domain}"),
                None => "•••".into(),
            },
            Self::Last4 => {
                let digits: Vec<char> = value.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
                if digits.len() <= 4 {
                    "•••".into()
                } else {
                    format!("•••{}", digits[digits.len() - 4..].iter().collect::<String>())
                }
            }
            Self::Hidden => "•••".into(),
            Self::Magnitude => match value.split('.').next().and_then(|w| w.trim_start_matches('-').parse::<u64>().ok()) {
                Some(0) | None => "•••".into(),
                Some(n) => {
                    let digits = n.to_string().len() as u32;
                    let low = 10u64.pow(digits - 1);
                    format!("{}-{}", if low == 1 { 0 } else { low }, low * 10 - 1)
                }
            },
        }
    }
}

macro_rules! sensitive {
    ($( $name:ident $key:literal $module:ident $mask:ident ),* $(,)?) => {
        /// A field whose value is protected by field-level security.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Enum)]
        pub enum SensitiveField { $( $name ),* }

        impl SensitiveField {
            pub const ALL: &'static [SensitiveField] = &[ $( SensitiveField::$name ),* ];
            /// `type.field`, as stored in roles.
            pub fn key(self) -> &'static str {
                match self { $( SensitiveField::$name => $key ),* }
            }
            /// The field's own name (`email` of `customer.email`), as the API spells it.
            pub fn name(self) -> &'static str {
                let key = self.key();
                key.split_once('.').map_or(key, |(_, f)| f)
            }
            pub fn module(self) -> Module {
                match self { $( SensitiveField::$name => Module::$module ),* }
            }
            pub fn mask(self) -> Mask {
                match self { $( SensitiveField::$name => Mask::$mask ),* }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $( $key => Some(SensitiveField::$name), )* _ => None }
            }
        }
    };
}

sensitive! {
    CustomerEmail "customer.email" Customers EmailDomain,
    CustomerPhone "customer.phone" Customers Last4,
    CustomerTaxId "customer.taxId" Customers Last4,
    CustomerNotes "customer.notes" Customers Hidden,
    CustomerCreditLimit "customer.creditLimit" Customers Magnitude,
    ProductCostPrice "product.costPrice" Products Magnitude,
    ProductSupplier "product.supplier" Products Hidden,
    OrderInternalNotes "order.internalNotes" Orders Hidden,
    PaymentCardLast4 "payment.cardLast4" Payments Hidden,
    PaymentIban "payment.iban" Payments Last4,
    PaymentPayerEmail "payment.payerEmail" Payments EmailDomain,
    InvoiceBankDetails "invoice.bankDetails" Invoices Last4,
    TicketInternalNotes "ticket.internalNotes" Tickets Hidden,
    UserEmail "user.email" Team EmailDomain,
    UserPhone "user.phone" Team Last4,
    UserLastLoginIp "user.lastLoginIp" Team Hidden,
}

impl SensitiveField {
    /// Fields whose every reading in full (READ or WRITE access) is audited: one entry
    /// per request naming the fields and how many values were shown.
    pub fn audited_on_read(self) -> bool {
        matches!(self, Self::CustomerTaxId | Self::PaymentIban | Self::InvoiceBankDetails)
    }

    /// The field's name inside its record (`taxId` of `customer.taxId`), as the audit
    /// log's `changes` keys use it.
    pub fn field_name(self) -> &'static str {
        self.key().split_once('.').map_or(self.key(), |(_, f)| f)
    }
}

/// Who may read the audit entries of a module (the `module` column), besides holding
/// audit.read. Unknown modules are closed: an entry nobody classified is shown to
/// nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditVisibility {
    /// audit.read alone (entries about the API and the audit log itself).
    Open,
    /// audit.read and this permission.
    Needs(Permission),
    Closed,
}

pub fn audit_visibility(module: &str) -> AuditVisibility {
    use AuditVisibility::*;
    if let Some(m) = Module::parse(module) {
        return match m.read_permission() {
            Some(p) => Needs(p),
            // Modules without a read permission (API keys) open to those who manage them.
            None => Permission::ALL.iter().copied().find(|p| p.module() == m).map_or(Closed, Needs),
        };
    }
    match module {
        "api" | "audit" => Open,
        // Sign-ins and sessions of the staff.
        "auth" => Needs(Permission::TeamRead),
        "security" | "workspaces" | "support" => Needs(Permission::SettingsRead),
        _ => Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_visibility_is_default_deny() {
        assert_eq!(audit_visibility("customers"), AuditVisibility::Needs(Permission::CustomersRead));
        assert_eq!(audit_visibility("apikeys"), AuditVisibility::Needs(Permission::ApikeysWrite));
        assert_eq!(audit_visibility("auth"), AuditVisibility::Needs(Permission::TeamRead));
        assert_eq!(audit_visibility("api"), AuditVisibility::Open);
        assert_eq!(audit_visibility("platform"), AuditVisibility::Closed);
        assert_eq!(audit_visibility("something-new"), AuditVisibility::Closed);
        assert_eq!(SensitiveField::CustomerTaxId.field_name(), "taxId");
    }

    #[test]
    fn permissions_round_trip_and_belong_to_their_module() {
        assert_eq!(Permission::ALL.len(), 44);
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
            assert!(p.as_str().starts_with(p.module().as_str()));
        }
        assert_eq!(Permission::parse("customers.fly"), None);
        assert_eq!(Module::Customers.read_permission(), Some(Permission::CustomersRead));
        assert_eq!(Module::Apikeys.read_permission(), None);
    }

    #[test]
    fn masks_show_only_their_part() {
        let cases = [
            (Mask::EmailDomain, "ada@lovelace.example", "•••@lovelace.example"),
            (Mask::Last4, "+44 20 7946 0958", "•••0958"),
            (Mask::Last4, "GB82 WEST 1234 5698 7654 32", "•••5432"),
            (Mask::Last4, "123", "•••"),
            (Mask::Hidden, "VIP, prefers phone", "•••"),
            (Mask::Magnitude, "25000.00", "10000-99999"),
            (Mask::Magnitude, "7", "0-9"),
            (Mask::Magnitude, "0", "•••"),
        ];
        for (mask, value, want) in cases {
            assert_eq!(mask.apply(value), want, "{mask:?} {value}");
        }
    }

    #[test]
    fn orders_are_narrow_to_wide() {
        assert!(Scope::None < Scope::Assigned && Scope::Assigned < Scope::Group && Scope::Department < Scope::All);
        assert!(FieldAccess::None < FieldAccess::Masked && FieldAccess::Read < FieldAccess::Write);
        for f in SensitiveField::ALL {
            assert_eq!(SensitiveField::parse(f.key()), Some(*f));
        }
    }
}
