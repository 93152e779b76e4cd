//! Who may call each root field. This table is the operation-level authorization of
//! the whole API: the gate looks every root field up here before it runs, a field that
//! is missing is refused (default deny), and a test walks the schema to fail the build
//! when a root field has no entry.

use crate::auth::Principal;
use crate::authz::catalog::Permission as P;
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in itself).
    Public,
    /// Any live session: workspace user or master admin.
    Session,
    /// A signed-in workspace user.
    User,
    /// A workspace user whose grants hold this permission right now.
    Permission(P),
    /// Platform support staff.
    MasterAdmin,
}

pub fn policy(root: &str, field: &str) -> Option<Access> {
    use Access::*;
    Some(match (root, field) {
        ("Query", "me") => Session,
        ("Query", "mySessions") => Session,
        ("Query", "auditLog") => Permission(P::AuditRead),
        ("Query", "verifyAuditChain") => Permission(P::AuditRead),
        ("Query", "roles") => Permission(P::RolesRead),
        ("Query", "role") => Permission(P::RolesRead),
        ("Query", "roleAssignments") => Permission(P::RolesRead),
        ("Query", "explainAccess") => Permission(P::RolesRead),
        ("Mutation", "createRole") => Permission(P::RolesWrite),
        ("Mutation", "updateRole") => Permission(P::RolesWrite),
        ("Mutation", "deleteRole") => Permission(P::RolesWrite),
        ("Mutation", "assignRole") => Permission(P::RolesWrite),
        ("Mutation", "unassignRole") => Permission(P::RolesWrite),
        ("Query", "customers") => Permission(P::CustomersRead),
        ("Query", "customer") => Permission(P::CustomersRead),
        ("Mutation", "createCustomer") => Permission(P::CustomersWrite),
        ("Mutation", "updateCustomer") => Permission(P::CustomersWrite),
        ("Mutation", "reassignCustomer") => Permission(P::CustomersWrite),
        ("Mutation", "deleteCustomer") => Permission(P::CustomersDelete),
        ("Mutation", "bulkUpdateCustomers") => Permission(P::CustomersWrite),
        ("Mutation", "bulkDeleteCustomers") => Permission(P::CustomersDelete),
        ("Mutation", "exportCustomers") => Permission(P::CustomersExport),
        ("Query", "users") => Permission(P::TeamRead),
        ("Query", "user") => Permission(P::TeamRead),
        ("Query", "departments") => Permission(P::TeamRead),
        ("Query", "teams") => Permission(P::TeamRead),
        ("Query", "groups") => Permission(P::TeamRead),
        ("Mutation", "createUser") => Permission(P::TeamWrite),
        ("Mutation", "updateUser") => Permission(P::TeamWrite),
        ("Mutation", "createDepartment") => Permission(P::TeamWrite),
        ("Mutation", "createTeam") => Permission(P::TeamWrite),
        ("Mutation", "createGroup") => Permission(P::TeamWrite),
        ("Query", "products") => Permission(P::ProductsRead),
        ("Query", "product") => Permission(P::ProductsRead),
        ("Mutation", "createProduct") => Permission(P::ProductsWrite),
        ("Mutation", "updateProduct") => Permission(P::ProductsWrite),
        ("Mutation", "adjustInventory") => Permission(P::ProductsInventory),
        ("Mutation", "deleteProduct") => Permission(P::ProductsDelete),
        ("Query", "orders") => Permission(P::OrdersRead),
        ("Query", "order") => Permission(P::OrdersRead),
        ("Mutation", "createOrder") => Permission(P::OrdersWrite),
        ("Mutation", "updateOrder") => Permission(P::OrdersWrite),
        ("Mutation", "processOrder") => Permission(P::OrdersProcess),
        ("Mutation", "cancelOrder") => Permission(P::OrdersCancel),
        ("Mutation", "refundOrder") => Permission(P::OrdersRefund),
        ("Query", "salesReport") => Permission(P::ReportsRead),
        ("Query", "pipelineAnalytics") => Permission(P::AnalyticsRead),
        ("Query", "tickets") => Permission(P::TicketsRead),
        ("Query", "ticket") => Permission(P::TicketsRead),
        ("Mutation", "createTicket") => Permission(P::TicketsWrite),
        ("Mutation", "updateTicket") => Permission(P::TicketsWrite),
        ("Query", "payments") => Permission(P::PaymentsRead),
        ("Query", "payment") => Permission(P::PaymentsRead),
        ("Mutation", "recordPayment") => Permission(P::PaymentsProcess),
        ("Mutation", "reconcilePayment") => Permission(P::PaymentsReconcile),
        ("Mutation", "refundPayment") => Permission(P::PaymentsRefund),
        ("Query", "quotes") => Permission(P::QuotesRead),
        ("Query", "quote") => Permission(P::QuotesRead),
        ("Mutation", "createQuote") => Permission(P::QuotesWrite),
        ("Mutation", "updateQuote") => Permission(P::QuotesWrite),
        ("Query", "jobs") => Permission(P::JobsRead),
        ("Query", "job") => Permission(P::JobsRead),
        ("Mutation", "createJob") => Permission(P::JobsWrite),
        ("Mutation", "updateJob") => Permission(P::JobsWrite),
        ("Query", "invoices") => Permission(P::InvoicesRead),
        ("Query", "invoice") => Permission(P::InvoicesRead),
        ("Mutation", "createInvoice") => Permission(P::InvoicesWrite),
        ("Mutation", "updateInvoice") => Permission(P::InvoicesWrite),
        ("Mutation", "deleteTicket") => Permission(P::TicketsWrite),
        ("Mutation", "deleteQuote") => Permission(P::QuotesWrite),
        ("Mutation", "deleteJob") => Permission(P::JobsWrite),
        ("Mutation", "deleteInvoice") => Permission(P::InvoicesWrite),
        ("Mutation", "login") => Public,
        ("Mutation", "masterLogin") => Public,
        ("Mutation", "logout") => Session,
        ("Mutation", "changePassword") => User,
        ("Mutation", "revokeSession") => Session,
        ("Mutation", "revokeOtherSessions") => Session,
        ("Mutation", "createWorkspace") => MasterAdmin,
        ("Mutation", "verifyTwoFactor") => Public,
        ("Mutation", "reauthenticate") => User,
        ("Query", "myTwoFactor") => User,
        ("Mutation", "startTotpEnrollment") => User,
        ("Mutation", "confirmTotpEnrollment") => User,
        ("Mutation", "disableTotp") => User,
        ("Mutation", "regenerateRecoveryCodes") => User,
        ("Query", "securitySettings") => Permission(P::SettingsRead),
        ("Mutation", "updateSecuritySettings") => Permission(P::SettingsWrite),
        ("Query", "securityOverrides") => Permission(P::SettingsRead),
        ("Mutation", "setSecurityOverride") => Permission(P::SettingsWrite),
        ("Mutation", "clearSecurityOverride") => Permission(P::SettingsWrite),
        _ => return None,
    })
}

/// How recent a session's last proof (password or second factor) must be for the
/// operations in `needs_step_up`.
pub const STEP_UP_WINDOW: chrono::Duration = chrono::Duration::minutes(10);

/// Sensitive operations: besides their permission they need a session that proved its
/// password or second factor within `STEP_UP_WINDOW` (else STEP_UP_REQUIRED).
pub fn needs_step_up(root: &str, field: &str) -> bool {
    root == "Mutation"
        && matches!(
            field,
            "createRole"
                | "updateRole"
                | "deleteRole"
                | "assignRole"
                | "unassignRole"
                | "updateSecuritySettings"
                | "setSecurityOverride"
                | "clearSecurityOverride"
                | "refundPayment"
                | "refundOrder"
                | "exportCustomers"
                | "createApiKey"
                | "revokeApiKey"
        )
}

/// Whether the principal's session proved itself recently enough for `needs_step_up`.
pub fn stepped_up(p: &Principal, now: chrono::DateTime<chrono::Utc>) -> bool {
    p.session().and_then(|s| s.record.proved_at).is_some_and(|at| now < at + STEP_UP_WINDOW)
}

impl Access {
    pub fn describe(self) -> String {
        match self {
            Self::Public => "nothing".into(),
            Self::Session => "a session".into(),
            Self::User => "a workspace user".into(),
            Self::Permission(p) => p.as_str().into(),
            Self::MasterAdmin => "a master admin".into(),
        }
    }

    pub fn check(self, p: &Principal) -> Result<(), AppError> {
        match (self, p) {
            (Self::Public, _) => Ok(()),
            (_, Principal::Anonymous) => Err(AppError::Unauthenticated),
            (Self::Session, _) => Ok(()),
            (Self::User, Principal::User(_)) => Ok(()),
            (Self::Permission(p), Principal::User(u)) if u.grants.has(p) => Ok(()),
            (Self::MasterAdmin, Principal::MasterAdmin(_)) => Ok(()),
            _ => Err(AppError::Forbidden),
        }
    }
}
