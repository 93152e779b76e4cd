//! Who may call each root field. This table is the operation-level authorization of
//! the whole API: the gate looks every root field up here before it runs, a field that
//! is missing is refused (default deny), and a test walks the schema to fail the build
//! when a root field has no entry.

use crate::auth::{BuiltinRole, Principal};
use crate::error::AppError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in itself).
    Public,
    /// Any live session: workspace user or master admin.
    Session,
    /// A signed-in workspace user.
    User,
    /// A workspace user holding at least this built-in role. The role model of the
    /// authorization capability replaces this with named permissions.
    Role(BuiltinRole),
    /// Platform support staff.
    MasterAdmin,
}

pub fn policy(root: &str, field: &str) -> Option<Access> {
    use Access::*;
    Some(match (root, field) {
        ("Query", "me") => Session,
        ("Query", "mySessions") => Session,
        ("Query", "auditLog") => Role(BuiltinRole::Owner),
        ("Mutation", "login") => Public,
        ("Mutation", "masterLogin") => Public,
        ("Mutation", "logout") => Session,
        ("Mutation", "changePassword") => User,
        ("Mutation", "revokeSession") => Session,
        ("Mutation", "revokeOtherSessions") => Session,
        ("Mutation", "createWorkspace") => MasterAdmin,
        _ => return None,
    })
}

impl Access {
    pub fn check(self, p: &Principal) -> Result<(), AppError> {
        match (self, p) {
            (Self::Public, _) => Ok(()),
            (_, Principal::Anonymous) => Err(AppError::Unauthenticated),
            (Self::Session, _) => Ok(()),
            (Self::User, Principal::User(_)) => Ok(()),
            (Self::Role(min), Principal::User(u)) if u.role >= min => Ok(()),
            (Self::MasterAdmin, Principal::MasterAdmin(_)) => Ok(()),
            _ => Err(AppError::Forbidden),
        }
    }
}
