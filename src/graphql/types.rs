//! Output and input types shared by the aggregates.

use crate::auth::BuiltinRole;
use crate::auth::session::ActiveSession;
use crate::authz::catalog::SensitiveField;
use crate::authz::fields::{Protected, protect};
use crate::error::AppResult;
use crate::graphql::context::state;
use crate::graphql::convert::reveal;
use crate::repo;
use crate::service::sign_in::TwoFactorMethod;
use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(SimpleObject, Clone)]
pub struct Workspace {
    pub id: ID,
    pub slug: String,
    pub name: String,
    pub status: WorkspaceStatus,
    pub seat_limit: i32,
    pub created_at: DateTime<Utc>,
}

pub use crate::domain::WorkspaceStatus;

impl From<entity::workspace::Model> for Workspace {
    fn from(w: entity::workspace::Model) -> Self {
        let status = WorkspaceStatus::parse(&w.status);
        Self { id: ID(w.id.to_string()), slug: w.slug, name: w.name, status, seat_limit: w.seat_limit, created_at: w.created_at }
    }
}

#[derive(SimpleObject, Clone)]
pub struct OrgUnit {
    pub id: ID,
    pub name: String,
}

/// Whose rules decide what of a user record is shown.
pub enum Viewing<'a> {
    /// A workspace user: their field access applies, except to their own record.
    As(&'a crate::authz::eval::Grants, Uuid),
    /// Everything (a master admin looking at the owner they just created).
    Full,
}

/// The organisation loaded once for a page of users, so that each user's department,
/// team and groups cost no query of their own.
#[derive(Default)]
pub struct OrgDirectory {
    pub names: std::collections::HashMap<Uuid, String>,
    pub memberships: std::collections::HashMap<Uuid, Vec<Uuid>>,
    /// The built-in roles each user of the page holds (see `User.role`).
    pub held: std::collections::HashMap<Uuid, Vec<String>>,
}

impl OrgDirectory {
    /// `users`: each user's id and primary group.
    pub async fn load(db: &impl sea_orm::ConnectionTrait, workspace_id: Uuid, users: &[(Uuid, Option<Uuid>)]) -> AppResult<Self> {
        let user_ids: Vec<Uuid> = users.iter().map(|(id, _)| *id).collect();
        let user_ids = user_ids.as_slice();
        let mut names = std::collections::HashMap::new();
        names.extend(repo::org::departments(db, workspace_id).await?.into_iter().map(|d| (d.id, d.name)));
        names.extend(repo::org::teams(db, workspace_id).await?.into_iter().map(|t| (t.id, t.name)));
        names.extend(repo::org::groups(db, workspace_id).await?.into_iter().map(|g| (g.id, g.name)));
        let mut memberships: std::collections::HashMap<Uuid, Vec<Uuid>> = std::collections::HashMap::new();
        for (u, g) in repo::org::memberships_of(db, workspace_id, user_ids).await? {
            memberships.entry(u).or_default().push(g);
        }
        let mut reach = memberships.clone();
        for (id, primary) in users {
            let groups = reach.entry(*id).or_default();
            groups.extend(primary.iter().filter(|p| !groups.contains(p)).copied().collect::<Vec<_>>());
        }
        let held = repo::roles::builtin_roles_held(db, workspace_id, &reach).await?;
        Ok(Self { names, memberships, held })
    }

    /// The highest built-in role a user of the page holds; GUEST when none.
    pub fn top_role(&self, user: Uuid) -> BuiltinRole {
        top_role(self.held.get(&user))
    }

    fn unit(&self, id: Uuid) -> Option<OrgUnit> {
        self.names.get(&id).map(|n| OrgUnit { id: ID(id.to_string()), name: n.clone() })
    }
}

fn top_role(names: Option<&Vec<String>>) -> BuiltinRole {
    names.into_iter().flatten().map(|n| BuiltinRole::parse(n)).max().unwrap_or(BuiltinRole::Guest)
}

/// A staff member, as the viewer may see them.
pub struct User {
    /// Set for users listed in a page (see `OrgDirectory`).
    pub org: Option<std::sync::Arc<OrgDirectory>>,
    pub user_id: Uuid,
    pub workspace_id: Uuid,
    pub username: String,
    pub display_name: String,
    pub active: bool,
    pub licensed: bool,
    pub licence_ends_at: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub department_id: Option<Uuid>,
    pub team_id: Option<Uuid>,
    pub primary_group_id: Option<Uuid>,
    email: Protected,
    phone: Protected,
    last_login_ip: Protected,
}

impl User {
    /// The only way from a user row to the API.
    pub fn project(u: entity::user::Model, viewing: Viewing<'_>) -> Self {
        let shown = |field: SensitiveField, value: Option<String>| match viewing {
            Viewing::Full => Protected::Value(value),
            Viewing::As(_, viewer) if viewer == u.id => Protected::Value(value),
            Viewing::As(g, _) => protect(g, field, value),
        };
        Self {
            org: None,
            email: shown(SensitiveField::UserEmail, Some(u.email.clone())),
            phone: shown(SensitiveField::UserPhone, u.phone.clone()),
            last_login_ip: shown(SensitiveField::UserLastLoginIp, u.last_login_ip.clone()),
            user_id: u.id,
            workspace_id: u.workspace_id,
            username: u.username,
            display_name: u.display_name,
            active: u.active,
            licensed: u.licensed,
            licence_ends_at: u.licence_ends_at,
            last_login_at: u.last_login_at,
            department_id: u.department_id,
            team_id: u.team_id,
            primary_group_id: u.primary_group_id,
        }
    }
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.user_id.to_string())
    }
    /// This user's audit entries as a record (created, changed, sessions revoked),
    /// newest first, as your own audit access allows.
    async fn history(&self, ctx: &async_graphql::Context<'_>) -> AppResult<Vec<super::audit::AuditEntry>> {
        super::history::of(ctx, self.workspace_id, self.user_id).await
    }
    async fn username(&self) -> &str {
        &self.username
    }
    async fn display_name(&self) -> &str {
        &self.display_name
    }
    /// Sensitive (masked: domain only); always visible to the user themselves.
    async fn email(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.email)
    }
    /// Sensitive (masked: last 4 digits).
    async fn phone(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.phone)
    }
    /// Sensitive.
    async fn last_login_ip(&self, ctx: &Context<'_>) -> Option<String> {
        reveal(ctx, &self.last_login_ip)
    }
    async fn active(&self) -> bool {
        self.active
    }
    async fn licensed(&self) -> bool {
        self.licensed
    }
    async fn licence_ends_at(&self) -> Option<DateTime<Utc>> {
        self.licence_ends_at
    }
    /// The highest built-in role the user holds, directly or through a group (whether
    /// or not its conditions hold right now); GUEST when they hold none. Every role,
    /// custom ones included, is in `roleAssignments` and, for yourself, `me.access`.
    async fn role(&self, ctx: &Context<'_>) -> AppResult<BuiltinRole> {
        if let Some(org) = &self.org {
            return Ok(org.top_role(self.user_id));
        }
        let db = &state(ctx)?.db;
        let mut groups: Vec<Uuid> = repo::org::groups_of(db, self.workspace_id, self.user_id).await?.into_iter().map(|g| g.id).collect();
        groups.extend(self.primary_group_id);
        let held =
            repo::roles::builtin_roles_held(db, self.workspace_id, &std::collections::HashMap::from([(self.user_id, groups)])).await?;
        Ok(top_role(held.get(&self.user_id)))
    }
    async fn last_login_at(&self) -> Option<DateTime<Utc>> {
        self.last_login_at
    }
    async fn department(&self, ctx: &Context<'_>) -> AppResult<Option<OrgUnit>> {
        let Some(id) = self.department_id else { return Ok(None) };
        if let Some(org) = &self.org {
            return Ok(org.unit(id));
        }
        let d = repo::org::department(&state(ctx)?.db, self.workspace_id, id).await?;
        Ok(d.map(|d| OrgUnit { id: ID(d.id.to_string()), name: d.name }))
    }
    async fn team(&self, ctx: &Context<'_>) -> AppResult<Option<OrgUnit>> {
        let Some(id) = self.team_id else { return Ok(None) };
        if let Some(org) = &self.org {
            return Ok(org.unit(id));
        }
        let t = repo::org::team(&state(ctx)?.db, self.workspace_id, id).await?;
        Ok(t.map(|t| OrgUnit { id: ID(t.id.to_string()), name: t.name }))
    }
    async fn primary_group(&self, ctx: &Context<'_>) -> AppResult<Option<OrgUnit>> {
        let Some(id) = self.primary_group_id else { return Ok(None) };
        if let Some(org) = &self.org {
            return Ok(org.unit(id));
        }
        let g = repo::org::group(&state(ctx)?.db, self.workspace_id, id).await?;
        Ok(g.map(|g| OrgUnit { id: ID(g.id.to_string()), name: g.name }))
    }
    /// Groups other than the primary group.
    async fn groups(&self, ctx: &Context<'_>) -> AppResult<Vec<OrgUnit>> {
        if let Some(org) = &self.org {
            return Ok(org.memberships.get(&self.user_id).into_iter().flatten().filter_map(|g| org.unit(*g)).collect());
        }
        let gs = repo::org::groups_of(&state(ctx)?.db, self.workspace_id, self.user_id).await?;
        Ok(gs.into_iter().map(|g| OrgUnit { id: ID(g.id.to_string()), name: g.name }).collect())
    }
}

#[derive(SimpleObject, Clone)]
pub struct MasterAdmin {
    pub id: ID,
    pub email: String,
}

#[derive(Enum, Copy, Clone, PartialEq, Eq)]
pub enum ViewerKind {
    User,
    MasterAdmin,
    ApiKey,
}

/// Who is signed in: a workspace user (with `user` and `workspace`), an API key (with
/// `apiKey` and `workspace`) or a master admin.
#[derive(SimpleObject)]
pub struct Viewer {
    pub kind: ViewerKind,
    pub user: Option<User>,
    pub workspace: Option<Workspace>,
    pub master_admin: Option<MasterAdmin>,
    pub api_key: Option<super::apikeys::ApiKey>,
    /// The user's effective permissions, scopes and field access right now.
    pub access: Option<super::roles::EffectiveAccess>,
}

/// One signed-in device.
#[derive(SimpleObject)]
pub struct Session {
    pub id: ID,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// True for the session this request was made with.
    pub current: bool,
    /// Set when this session is platform support acting as you: the master admin's
    /// email. Revoking it ends their access.
    pub impersonated_by: Option<String>,
}

impl Session {
    pub fn from_active(s: &ActiveSession, current_hash: Option<&str>) -> Self {
        let r = &s.record;
        Self {
            id: ID(r.id.to_string()),
            user_agent: r.user_agent.clone(),
            ip: r.ip.clone(),
            created_at: r.created_at,
            last_seen_at: r.last_seen_at,
            expires_at: r.expires_at,
            current: Some(s.hash.as_str()) == current_hash,
            impersonated_by: r.impersonation.as_ref().map(|i| i.admin_email.clone()),
        }
    }
}

#[derive(SimpleObject)]
pub struct LoginPayload {
    /// The session token. Also set as an HttpOnly cookie; send it back either way
    /// (cookie, or `Authorization: Bearer <token>`). Shown only here, once. Null when
    /// a second factor is needed first (see `challenge`).
    pub token: Option<String>,
    pub session: Option<Session>,
    /// Set instead of a session when the sign-in needs a second factor: answer it with
    /// `verifyTwoFactor`.
    pub challenge: Option<TwoFactorChallenge>,
    /// Failed sign-ins on this account since its previous successful one.
    pub failed_attempts_since_last_sign_in: i32,
    /// A master admin's first sign-in: the authenticator to set up. Answer the
    /// challenge with its first code (method TOTP) to enrol it. Shown only here, once.
    pub totp_enrollment: Option<TotpEnrollment>,
    /// Recovery codes, shown once: only on the sign-in that enrolled a master admin's
    /// authenticator.
    pub recovery_codes: Option<Vec<String>>,
}

#[derive(InputObject)]
pub struct LoginInput {
    /// The workspace's slug.
    pub workspace: String,
    /// Username or email.
    pub login: String,
    #[graphql(secret)]
    pub password: String,
}

#[derive(InputObject)]
pub struct MasterLoginInput {
    pub email: String,
    #[graphql(secret)]
    pub password: String,
}

#[derive(InputObject)]
pub struct WorkspaceOwnerInput {
    pub username: String,
    pub email: String,
    #[graphql(secret)]
    pub password: String,
}

#[derive(InputObject)]
pub struct CreateWorkspaceInput {
    pub slug: String,
    pub name: String,
    pub owner: WorkspaceOwnerInput,
}

#[derive(SimpleObject)]
pub struct CreateWorkspacePayload {
    pub workspace: Workspace,
    pub owner: User,
}

#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// For authenticator apps (scan as QR code). Shown only here, once.
    pub otpauth_uri: String,
    /// The same seed in base32, for typing in by hand.
    pub secret: String,
    /// The otpauth URI as an SVG QR code (data: URI).
    pub qr_code_svg: String,
}

/// Kept next to `LoginPayload` users: a challenge answered instead of a session.
#[derive(SimpleObject)]
pub struct TwoFactorChallenge {
    /// Pass to `verifyTwoFactor`. Valid once, until `expiresAt`.
    pub id: String,
    pub methods: Vec<TwoFactorMethod>,
    pub expires_at: DateTime<Utc>,
}
