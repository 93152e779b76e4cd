//! Creating workspaces (master admins).

use crate::audit::AuditEvent;
use crate::auth::BuiltinRole;
use crate::domain::{Email, NewPassword, Slug, Username, parse_name};
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::state::AppState;

pub struct NewWorkspaceInput<'a> {
    pub slug: &'a str,
    pub name: &'a str,
    pub owner_username: &'a str,
    pub owner_email: &'a str,
    pub owner_password: &'a str,
    /// Apply the strength rules to the Owner's password (every path but the demo seed,
    /// whose password the operator chose on the command line).
    pub check_strength: bool,
}

pub const DEFAULT_SEAT_LIMIT: i32 = 25;

/// Creates a workspace with its Owner. Used by `createWorkspace` (inside the gate's
/// transaction) and by the demo seed; returns the event for the caller's audit path.
pub async fn create(
    state: &AppState,
    db: &impl sea_orm::ConnectionTrait,
    input: NewWorkspaceInput<'_>,
) -> AppResult<(entity::workspace::Model, entity::user::Model, AuditEvent)> {
    let slug = Slug::parse("slug", input.slug)?;
    let name = parse_name("name", input.name, 200)?;
    let username = Username::parse("owner.username", input.owner_username)?;
    let email = Email::parse("owner.email", input.owner_email)?;
    let password = NewPassword::parse("owner.password", input.owner_password)?;
    if input.check_strength {
        let local = email.display.split('@').next().unwrap_or_default();
        crate::auth::password_policy::check_strength(
            "owner.password",
            password.expose(),
            &[&username.display, &email.display, local, &name, &slug.0],
        )?;
    }
    let now = state.clock.now();
    if repo::workspaces::by_slug(db, &slug.0).await?.is_some() {
        return Err(AppError::Conflict("a workspace with this slug already exists".into()));
    }
    let hash = state.hasher.hash(&password).await?;
    let ws =
        repo::workspaces::insert(db, repo::workspaces::NewWorkspace { slug: &slug.0, name: &name, seat_limit: DEFAULT_SEAT_LIMIT, now })
            .await
            .map_err(|e| {
                if repo::is_unique_violation(&e) {
                    AppError::Conflict("a workspace with this slug already exists".into())
                } else {
                    e.into()
                }
            })?;
    let owner = repo::users::insert(
        db,
        ws.id,
        repo::users::NewUser {
            username: &username,
            email: &email,
            display_name: &username.display,
            password_hash: Some(hash),
            builtin_role: BuiltinRole::Owner,
            department_id: None,
            team_id: None,
            primary_group_id: None,
            active: true,
            licensed: true,
            licence_ends_at: None,
            now,
        },
    )
    .await?;
    let roles = crate::service::roles::create_builtin_roles(db, ws.id, now).await?;
    if let Some(owner_role) = roles.get(&BuiltinRole::Owner) {
        crate::service::roles::assign_plain(db, ws.id, *owner_role, owner.id, None, now).await?;
    }
    let event = AuditEvent::WorkspaceCreated {
        workspace_id: ws.id,
        slug: ws.slug.clone(),
        name: ws.name.clone(),
        owner_id: owner.id,
        owner_username: owner.username.clone(),
    };
    Ok((ws, owner, event))
}
