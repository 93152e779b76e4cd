//! The audit path.
//!
//! Guarantees: services describe what happened as typed `AuditEvent`s; only the
//! mutation gate (`graphql::gate`) writes them, inside the same database transaction as
//! the change, so a change without its entry cannot be committed. Secrets never enter
//! an event: password changes are recorded as "[redacted]" before/after. Assumes every
//! caller reaches the database through the gate's transaction for mutations.

pub mod bus;
pub mod chain;
pub mod group;
pub mod tx;
pub mod writer;

pub use tx::Tx;

use crate::auth::Principal;
use serde_json::{Value, json};
use uuid::Uuid;

pub use crate::domain::REDACTED;

#[derive(Debug, Clone)]
pub enum AuditEvent {
    SignedIn {
        workspace_id: Uuid,
        user_id: Uuid,
        username: String,
        session_id: Uuid,
        previous_login: Option<String>,
        at: String,
    },
    SignInFailed {
        workspace_id: Option<Uuid>,
        login: String,
    },
    SignedOut {
        workspace_id: Uuid,
        user_id: Uuid,
        session_id: Uuid,
    },
    SessionRevoked {
        workspace_id: Option<Uuid>,
        subject_id: Uuid,
        session_id: Uuid,
    },
    OtherSessionsRevoked {
        workspace_id: Option<Uuid>,
        subject_id: Uuid,
        count: usize,
    },
    PasswordChanged {
        workspace_id: Uuid,
        user_id: Uuid,
        sessions_revoked: usize,
    },
    MasterSignedIn {
        admin_id: Uuid,
        email: String,
        session_id: Uuid,
    },
    MasterSignInFailed {
        email: String,
    },
    MasterSignedOut {
        admin_id: Uuid,
        session_id: Uuid,
    },
    WorkspaceCreated {
        workspace_id: Uuid,
        slug: String,
        name: String,
        owner_id: Uuid,
        owner_username: String,
    },
    UserCreated {
        workspace_id: Uuid,
        user_id: Uuid,
        username: String,
        role: &'static str,
        active: bool,
    },
    MasterAdminCreated {
        admin_id: Uuid,
        email: String,
    },
    /// A CRM record changed; `changes` is already `{field: {before, after}}` with
    /// sensitive values redacted by the service.
    Record {
        workspace_id: Uuid,
        action: &'static str,
        module: &'static str,
        target_type: &'static str,
        id: Uuid,
        changes: Value,
    },
    RoleCreated {
        workspace_id: Uuid,
        role_id: Uuid,
        after: Value,
    },
    RoleUpdated {
        workspace_id: Uuid,
        role_id: Uuid,
        before: Value,
        after: Value,
    },
    RoleDeleted {
        workspace_id: Uuid,
        role_id: Uuid,
        before: Value,
    },
    RoleAssigned {
        workspace_id: Uuid,
        assignment_id: Uuid,
        after: Value,
    },
    RoleUnassigned {
        workspace_id: Uuid,
        assignment_id: Uuid,
        before: Value,
    },
    /// Support tooling: impersonation and workspace lifecycle actions. Each is written
    /// twice, to the workspace's log (module `support` / `workspaces`) and to the
    /// platform log (`workspace_id` None, module `platform`).
    Support {
        workspace_id: Option<Uuid>,
        module: &'static str,
        action: &'static str,
        target_type: &'static str,
        target_id: String,
        changes: Value,
        reason: Option<String>,
    },
    /// Account security: two-factor, challenges, step-up, throttles, restrictions,
    /// settings and overrides. `actor` is set when the request itself is anonymous
    /// (a sign-in in progress).
    Security {
        workspace_id: Option<Uuid>,
        actor: Option<Actor>,
        action: &'static str,
        target_type: &'static str,
        target_id: Option<String>,
        changes: Value,
        reason: Option<String>,
    },
}

/// `{ key: { before, after } }` for every top-level key that differs.
pub fn diff(before: &Value, after: &Value) -> Value {
    let empty = serde_json::Map::new();
    let (b, a) = (before.as_object().unwrap_or(&empty), after.as_object().unwrap_or(&empty));
    let mut out = serde_json::Map::new();
    for k in b.keys().chain(a.keys()) {
        let (bv, av) = (b.get(k).cloned().unwrap_or(Value::Null), a.get(k).cloned().unwrap_or(Value::Null));
        if bv != av && !out.contains_key(k) {
            out.insert(k.clone(), change(bv, av));
        }
    }
    Value::Object(out)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorKind {
    User,
    MasterAdmin,
    Anonymous,
    /// The server itself (command-line bootstrap: demo seed, first master admin).
    System,
    /// A partner API key (its id and name).
    ApiKey,
}

impl ActorKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::User => "user",
            Self::MasterAdmin => "master_admin",
            Self::Anonymous => "anonymous",
            Self::System => "system",
            Self::ApiKey => "api_key",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Actor {
    pub kind: ActorKind,
    pub id: Option<Uuid>,
    pub label: Option<String>,
    /// The master admin behind an impersonation session: every entry names both.
    pub impersonator: Option<Uuid>,
}

impl Actor {
    pub fn new(kind: ActorKind, id: Option<Uuid>, label: Option<String>) -> Self {
        Self { kind, id, label, impersonator: None }
    }

    pub fn system() -> Self {
        Self::new(ActorKind::System, None, Some("palisade".into()))
    }

    pub fn of(p: &Principal) -> Self {
        match p {
            Principal::Anonymous => Self::new(ActorKind::Anonymous, None, None),
            Principal::User(u) => match &u.credential {
                crate::auth::Credential::ApiKey(k) => {
                    Self::new(ActorKind::ApiKey, Some(k.id), Some(format!("{} (pk_{})", k.name, k.prefix)))
                }
                crate::auth::Credential::Session(s) => Self {
                    impersonator: s.record.impersonation.as_ref().map(|i| i.admin_id),
                    ..Self::new(ActorKind::User, Some(u.user_id), Some(u.username.clone()))
                },
            },
            Principal::MasterAdmin(m) => Self::new(ActorKind::MasterAdmin, Some(m.admin_id), Some(m.email.clone())),
        }
    }
}

/// What an event becomes in the log, before the gate adds actor, request and outcome.
#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub workspace_id: Option<Uuid>,
    /// Set when the event names its own actor (a sign-in: the request was anonymous).
    pub actor: Option<Actor>,
    pub action: &'static str,
    pub module: &'static str,
    pub target_type: Option<&'static str>,
    pub target_id: Option<String>,
    pub changes: Option<Value>,
    /// Why, in words: the permission a refused call needed, a stated reason.
    pub reason: Option<String>,
}

pub fn change(before: impl Into<Value>, after: impl Into<Value>) -> Value {
    json!({ "before": before.into(), "after": after.into() })
}

/// Attempted logins are kept for investigation, bounded so the log cannot be flooded
/// with megabytes per entry.
fn clip(s: &str) -> String {
    s.chars().take(128).collect()
}

impl AuditEvent {
    pub fn into_record(self) -> AuditRecord {
        let base = |workspace_id, action, module| AuditRecord {
            workspace_id,
            actor: None,
            action,
            module,
            target_type: None,
            target_id: None,
            changes: None,
            reason: None,
        };
        match self {
            Self::SignedIn { workspace_id, user_id, username, session_id, previous_login, at } => AuditRecord {
                actor: Some(Actor::new(ActorKind::User, Some(user_id), Some(username))),
                target_type: Some("session"),
                target_id: Some(session_id.to_string()),
                changes: Some(json!({ "session": change(Value::Null, "active"), "lastLoginAt": change(previous_login, at) })),
                ..base(Some(workspace_id), "auth.sign_in", "auth")
            },
            Self::SignInFailed { workspace_id, login } => AuditRecord {
                actor: Some(Actor::new(ActorKind::Anonymous, None, Some(clip(&login)))),
                ..base(workspace_id, "auth.sign_in", "auth")
            },
            Self::SignedOut { workspace_id, user_id: _, session_id } => AuditRecord {
                target_type: Some("session"),
                target_id: Some(session_id.to_string()),
                changes: Some(json!({ "session": change("active", "ended") })),
                ..base(Some(workspace_id), "auth.sign_out", "auth")
            },
            Self::SessionRevoked { workspace_id, subject_id: _, session_id } => AuditRecord {
                target_type: Some("session"),
                target_id: Some(session_id.to_string()),
                changes: Some(json!({ "session": change("active", "revoked") })),
                ..base(workspace_id, "auth.session_revoked", "auth")
            },
            Self::OtherSessionsRevoked { workspace_id, subject_id, count } => AuditRecord {
                target_type: Some("user"),
                target_id: Some(subject_id.to_string()),
                changes: Some(json!({ "otherSessions": change(count, 0) })),
                ..base(workspace_id, "auth.other_sessions_revoked", "auth")
            },
            Self::PasswordChanged { workspace_id, user_id, sessions_revoked } => AuditRecord {
                target_type: Some("user"),
                target_id: Some(user_id.to_string()),
                changes: Some(json!({ "password": change(REDACTED, REDACTED), "otherSessions": change(sessions_revoked, 0) })),
                ..base(Some(workspace_id), "auth.password_changed", "auth")
            },
            Self::MasterSignedIn { admin_id, email, session_id } => AuditRecord {
                actor: Some(Actor::new(ActorKind::MasterAdmin, Some(admin_id), Some(email))),
                target_type: Some("session"),
                target_id: Some(session_id.to_string()),
                changes: Some(json!({ "session": change(Value::Null, "active") })),
                ..base(None, "platform.sign_in", "platform")
            },
            Self::MasterSignInFailed { email } => AuditRecord {
                actor: Some(Actor::new(ActorKind::Anonymous, None, Some(clip(&email)))),
                ..base(None, "platform.sign_in", "platform")
            },
            Self::MasterSignedOut { admin_id: _, session_id } => AuditRecord {
                target_type: Some("session"),
                target_id: Some(session_id.to_string()),
                changes: Some(json!({ "session": change("active", "ended") })),
                ..base(None, "platform.sign_out", "platform")
            },
            Self::WorkspaceCreated { workspace_id, slug, name, owner_id, owner_username } => AuditRecord {
                target_type: Some("workspace"),
                target_id: Some(workspace_id.to_string()),
                changes: Some(json!({
                    "slug": change(Value::Null, slug),
                    "name": change(Value::Null, name),
                    "status": change(Value::Null, "active"),
                    "owner": change(Value::Null, json!({ "id": owner_id.to_string(), "username": owner_username })),
                })),
                ..base(Some(workspace_id), "workspace.created", "workspaces")
            },
            Self::UserCreated { workspace_id, user_id, username, role, active } => AuditRecord {
                target_type: Some("user"),
                target_id: Some(user_id.to_string()),
                changes: Some(json!({
                    "username": change(Value::Null, username),
                    "role": change(Value::Null, role),
                    "active": change(Value::Null, active),
                    "password": change(Value::Null, REDACTED),
                })),
                ..base(Some(workspace_id), "user.created", "team")
            },
            Self::MasterAdminCreated { admin_id, email } => AuditRecord {
                target_type: Some("master_admin"),
                target_id: Some(admin_id.to_string()),
                changes: Some(json!({ "email": change(Value::Null, email), "password": change(Value::Null, REDACTED) })),
                ..base(None, "platform.master_admin_created", "platform")
            },
            Self::Record { workspace_id, action, module, target_type, id, changes } => AuditRecord {
                target_type: Some(target_type),
                target_id: Some(id.to_string()),
                changes: Some(changes),
                ..base(Some(workspace_id), action, module)
            },
            Self::RoleCreated { workspace_id, role_id, after } => AuditRecord {
                target_type: Some("role"),
                target_id: Some(role_id.to_string()),
                changes: Some(diff(&Value::Null, &after)),
                ..base(Some(workspace_id), "role.created", "roles")
            },
            Self::RoleUpdated { workspace_id, role_id, before, after } => AuditRecord {
                target_type: Some("role"),
                target_id: Some(role_id.to_string()),
                changes: Some(diff(&before, &after)),
                ..base(Some(workspace_id), "role.updated", "roles")
            },
            Self::RoleDeleted { workspace_id, role_id, before } => AuditRecord {
                target_type: Some("role"),
                target_id: Some(role_id.to_string()),
                changes: Some(diff(&before, &Value::Null)),
                ..base(Some(workspace_id), "role.deleted", "roles")
            },
            Self::RoleAssigned { workspace_id, assignment_id, after } => AuditRecord {
                target_type: Some("role_assignment"),
                target_id: Some(assignment_id.to_string()),
                changes: Some(diff(&Value::Null, &after)),
                ..base(Some(workspace_id), "role.assigned", "roles")
            },
            Self::RoleUnassigned { workspace_id, assignment_id, before } => AuditRecord {
                target_type: Some("role_assignment"),
                target_id: Some(assignment_id.to_string()),
                changes: Some(diff(&before, &Value::Null)),
                ..base(Some(workspace_id), "role.unassigned", "roles")
            },
            Self::Support { workspace_id, module, action, target_type, target_id, changes, reason } => AuditRecord {
                target_type: Some(target_type),
                target_id: Some(target_id),
                changes: Some(changes),
                reason,
                ..base(workspace_id, action, if workspace_id.is_some() { module } else { "platform" })
            },
            Self::Security { workspace_id, actor, action, target_type, target_id, changes, reason } => AuditRecord {
                actor,
                target_type: Some(target_type),
                target_id,
                changes: Some(changes),
                reason,
                ..base(workspace_id, action, "security")
            },
        }
    }
}

/// The `{field: {before, after}}` of a record change: plain fields with their values,
/// sensitive fields compared on their real values but logged only as "[redacted]"
/// (or null when empty). Fields that did not change are left out.
pub fn record_changes(plain: &[(&str, Value, Value)], secret: &[(&str, Option<String>, Option<String>)]) -> Value {
    let mut out = serde_json::Map::new();
    for (k, b, a) in plain {
        if b != a {
            out.insert((*k).to_owned(), change(b.clone(), a.clone()));
        }
    }
    let shown = |v: &Option<String>| if v.is_some() { Value::from(REDACTED) } else { Value::Null };
    for (k, b, a) in secret {
        if b != a {
            out.insert((*k).to_owned(), change(shown(b), shown(a)));
        }
    }
    Value::Object(out)
}
