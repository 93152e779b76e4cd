//! Who may call each root field. This table is the operation-level authorization of
//! the whole API: the gate (and the WebSocket handler, for subscriptions) asks
//! `authorize` before any root field runs, a field that is missing from the table is
//! refused (default deny), and a test walks the schema to fail the build when a root
//! field has no entry.
//!
//! Besides the table, `authorize` applies the rules that hold for every operation:
//! API keys act only within their role and never on people-only or step-up
//! operations; an impersonating master admin cannot touch the user's credentials or
//! security settings; an archived workspace is read-only; sensitive operations need a
//! recent step-up.

use crate::auth::Principal;
use crate::authz::builtin::OWNER_RANK;
use crate::authz::catalog::Permission as P;
use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in itself).
    Public,
    /// Any authenticated principal, API keys included.
    Principal,
    /// Any live session: workspace user or master admin (not an API key).
    Session,
    /// A signed-in workspace user (a person, not an API key).
    User,
    /// A workspace user whose grants hold this permission right now.
    Permission(P),
    /// Platform support staff.
    MasterAdmin,
    /// A master admin, or the Owner of a workspace (for their own workspace).
    MasterAdminOrOwner,
}

pub fn policy(root: &str, field: &str) -> Option<Access> {
    use Access::*;
    Some(match (root, field) {
        ("Query", "me") => Principal,
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
        ("Mutation", "importCustomers") => Permission(P::CustomersImport),
        ("Mutation", "bulkUpdateProducts") => Permission(P::ProductsWrite),
        ("Mutation", "bulkDeleteProducts") => Permission(P::ProductsDelete),
        ("Mutation", "exportProducts") => Permission(P::ProductsRead),
        ("Mutation", "exportOrders") => Permission(P::OrdersRead),
        ("Mutation", "exportPayments") => Permission(P::PaymentsExport),
        ("Mutation", "bulkUpdateQuotes") => Permission(P::QuotesWrite),
        ("Mutation", "bulkDeleteQuotes") => Permission(P::QuotesWrite),
        ("Mutation", "exportQuotes") => Permission(P::QuotesRead),
        ("Mutation", "bulkUpdateJobs") => Permission(P::JobsWrite),
        ("Mutation", "bulkDeleteJobs") => Permission(P::JobsWrite),
        ("Mutation", "exportJobs") => Permission(P::JobsRead),
        ("Mutation", "bulkUpdateInvoices") => Permission(P::InvoicesWrite),
        ("Mutation", "bulkDeleteInvoices") => Permission(P::InvoicesWrite),
        ("Mutation", "exportInvoices") => Permission(P::InvoicesRead),
        ("Mutation", "bulkUpdateTickets") => Permission(P::TicketsWrite),
        ("Mutation", "bulkDeleteTickets") => Permission(P::TicketsWrite),
        ("Mutation", "exportTickets") => Permission(P::TicketsRead),
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
        ("Mutation", "exportAnalytics") => Permission(P::AnalyticsExport),
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
        ("Mutation", "resendSignInCode") => Public,
        ("Mutation", "reauthenticate") => Session,
        ("Query", "myTwoFactor") => Session,
        ("Mutation", "startTotpEnrollment") => User,
        ("Mutation", "confirmTotpEnrollment") => User,
        ("Mutation", "disableTotp") => User,
        ("Mutation", "regenerateRecoveryCodes") => User,
        ("Query", "securitySettings") => Permission(P::SettingsRead),
        ("Mutation", "updateSecuritySettings") => Permission(P::SettingsWrite),
        ("Query", "securityOverrides") => Permission(P::SettingsRead),
        ("Mutation", "setSecurityOverride") => Permission(P::SettingsWrite),
        ("Mutation", "clearSecurityOverride") => Permission(P::SettingsWrite),
        ("Query", "supportAccess") => Permission(P::SettingsRead),
        ("Mutation", "updateSupportAccess") => Permission(P::SettingsWrite),
        ("Query", "auditRetention") => Permission(P::AuditRead),
        ("Mutation", "updateAuditRetention") => Permission(P::SettingsWrite),
        ("Mutation", "applyAuditRetention") => Permission(P::SettingsWrite),
        ("Mutation", "exportAuditLog") => Permission(P::AuditExport),
        ("Subscription", "auditEvents") => Permission(P::AuditRead),
        ("Query", "apiKeys") => Permission(P::ApikeysWrite),
        ("Mutation", "createApiKey") => Permission(P::ApikeysWrite),
        ("Mutation", "revokeApiKey") => Permission(P::ApikeysWrite),
        ("Mutation", "startImpersonation") => MasterAdmin,
        ("Mutation", "stopImpersonation") => Session,
        ("Query", "impersonationSessions") => MasterAdminOrOwner,
        ("Query", "workspaces") => MasterAdmin,
        ("Mutation", "suspendWorkspace") => MasterAdmin,
        ("Mutation", "archiveWorkspace") => MasterAdmin,
        ("Mutation", "restoreWorkspace") => MasterAdmin,
        ("Mutation", "softDeleteWorkspace") => MasterAdmin,
        ("Mutation", "purgeWorkspace") => MasterAdmin,
        ("Query", "platformAuditLog") => MasterAdmin,
        ("Query", "verifyPlatformAuditChain") => MasterAdmin,
        _ => return None,
    })
}

pub use crate::auth::session::{STEP_UP_WINDOW, stepped_up};

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
                | "exportProducts"
                | "exportOrders"
                | "exportPayments"
                | "exportQuotes"
                | "exportJobs"
                | "exportInvoices"
                | "exportTickets"
                | "exportAnalytics"
                | "createApiKey"
                | "revokeApiKey"
                | "updateSupportAccess"
                | "updateAuditRetention"
                | "exportAuditLog"
                | "startImpersonation"
                | "suspendWorkspace"
                | "softDeleteWorkspace"
                | "purgeWorkspace"
        )
}

/// What an impersonating master admin may not do as the user: their credentials,
/// second factor, sessions (and where the user signs in from), keys and the
/// workspace's security settings.
pub fn refused_while_impersonating(root: &str, field: &str) -> bool {
    (root == "Query" && matches!(field, "mySessions" | "myTwoFactor"))
        || root == "Mutation"
            && matches!(
                field,
                "changePassword"
                    | "reauthenticate"
                    | "startTotpEnrollment"
                    | "confirmTotpEnrollment"
                    | "disableTotp"
                    | "regenerateRecoveryCodes"
                    | "revokeSession"
                    | "revokeOtherSessions"
                    | "createApiKey"
                    | "revokeApiKey"
                    | "updateSecuritySettings"
                    | "setSecurityOverride"
                    | "clearSecurityOverride"
                    | "updateSupportAccess"
                    | "updateAuditRetention"
                    | "applyAuditRetention"
            )
}

/// The mutations an archived (read-only) workspace still accepts: signing in and out,
/// and ending sessions. Everything else is refused with WORKSPACE_ARCHIVED.
pub fn allowed_when_archived(field: &str) -> bool {
    matches!(
        field,
        "login"
            | "verifyTwoFactor"
            | "resendSignInCode"
            | "reauthenticate"
            | "logout"
            | "revokeSession"
            | "revokeOtherSessions"
            | "stopImpersonation"
    )
}

/// Why a root field was refused: the error for the client and the reason for the log.
#[derive(Debug)]
pub struct Refusal {
    pub error: AppError,
    pub reason: Option<String>,
}

impl Refusal {
    fn new(error: AppError, reason: impl Into<String>) -> Self {
        Self { error, reason: Some(reason.into()) }
    }
}

/// The one decision for a root field (see the module doc), in this order: the policy
/// table, what the principal is, API-key limits, impersonation limits, an archived
/// workspace, step-up.
pub fn authorize(root: &str, field: &str, p: &Principal, now: chrono::DateTime<chrono::Utc>) -> Result<(), Refusal> {
    let Some(access) = policy(root, field) else {
        tracing::error!(root, field, "root field has no access policy; refused");
        return Err(Refusal { error: AppError::Forbidden, reason: None });
    };
    access.check(p).map_err(|e| Refusal::new(e, format!("requires {}", access.describe())))?;
    if let Principal::User(u) = p {
        if u.api_key().is_some() {
            if !u.grants.restrictions.api_access {
                let why = "this key's role does not allow API access";
                return Err(Refusal::new(AppError::Denied(why.into()), why));
            }
            if needs_step_up(root, field) {
                let why = "API keys cannot perform operations that need a person's step-up";
                return Err(Refusal::new(AppError::Denied(why.into()), why));
            }
        }
        if u.impersonation().is_some() && refused_while_impersonating(root, field) {
            let why = "the user's credentials, sessions, keys and security settings are out of reach while impersonating";
            return Err(Refusal::new(AppError::Denied(why.into()), why));
        }
        if root == "Mutation" && u.workspace_status == crate::domain::WorkspaceStatus::Archived && !allowed_when_archived(field) {
            return Err(Refusal::new(AppError::WorkspaceArchived, "the workspace is archived (read-only)"));
        }
    }
    if needs_step_up(root, field) && !stepped_up(p, now) {
        return Err(Refusal::new(AppError::StepUpRequired, "requires a recent password or two-factor check (step-up)"));
    }
    Ok(())
}

impl Access {
    pub fn describe(self) -> String {
        match self {
            Self::Public => "nothing".into(),
            Self::Principal => "a session or API key".into(),
            Self::Session => "a session".into(),
            Self::User => "a workspace user".into(),
            Self::Permission(p) => p.as_str().into(),
            Self::MasterAdmin => "a master admin".into(),
            Self::MasterAdminOrOwner => "a master admin or the workspace Owner".into(),
        }
    }

    pub fn check(self, p: &Principal) -> AppResult<()> {
        match (self, p) {
            (Self::Public, _) => Ok(()),
            (_, Principal::Anonymous) => Err(AppError::Unauthenticated),
            (Self::Principal, _) => Ok(()),
            (Self::Session, _) => p.session().map(|_| ()).ok_or(AppError::Forbidden),
            (Self::User, Principal::User(u)) if u.session().is_some() => Ok(()),
            (Self::Permission(p), Principal::User(u)) if u.grants.has(p) => Ok(()),
            (Self::MasterAdmin | Self::MasterAdminOrOwner, Principal::MasterAdmin(_)) => Ok(()),
            (Self::MasterAdminOrOwner, Principal::User(u)) if u.session().is_some() && u.grants.top_rank >= OWNER_RANK => Ok(()),
            _ => Err(AppError::Forbidden),
        }
    }
}
