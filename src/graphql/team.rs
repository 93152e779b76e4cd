//! Staff management over GraphQL.

use super::context::state;
use super::context::user;
use super::convert::parse_id;
use super::convert::patch;
use super::paging::{ListInfo, Window, wants_total};
use super::types::{OrgDirectory, OrgUnit, User, Viewing};
use crate::audit::Tx;
use crate::domain::Patch;
use crate::error::{AppError, AppResult};
use crate::repo;
use crate::service::team::{self as svc, NewUserInput, Unit, UserPatch};
use async_graphql::connection::{Connection, EmptyFields};
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};

#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Part of the username or display name.
    pub search: Option<String>,
    pub active: Option<bool>,
    pub department_id: Option<ID>,
    pub team_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateUserInput {
    pub display_name: Option<String>,
    /// Needs WRITE access to user emails.
    pub email: Option<String>,
    /// Needs WRITE access to user phones; null clears.
    pub phone: MaybeUndefined<String>,
    pub department_id: MaybeUndefined<ID>,
    pub team_id: MaybeUndefined<ID>,
    pub primary_group_id: MaybeUndefined<ID>,
    /// Replaces the user's other groups.
    pub group_ids: Option<Vec<ID>>,
    /// false ends the user's sessions at once.
    pub active: Option<bool>,
    pub licensed: Option<bool>,
    pub licence_ends_at: MaybeUndefined<DateTime<Utc>>,
}

#[derive(InputObject)]
pub struct CreateUserInput {
    pub username: String,
    pub email: String,
    pub display_name: Option<String>,
    /// The initial password (12 to 256 characters).
    #[graphql(secret)]
    pub password: String,
    pub phone: Option<String>,
    pub department_id: Option<ID>,
    pub team_id: Option<ID>,
    pub primary_group_id: Option<ID>,
    #[graphql(default)]
    pub group_ids: Vec<ID>,
}

fn id_patch(field: &str, m: MaybeUndefined<ID>) -> AppResult<Patch<uuid::Uuid>> {
    Ok(match m {
        MaybeUndefined::Undefined => Patch::Keep,
        MaybeUndefined::Null => Patch::Clear,
        MaybeUndefined::Value(v) => Patch::Set(parse_id(field, &v)?),
    })
}

fn ids(field: &str, v: &[ID]) -> AppResult<Vec<uuid::Uuid>> {
    v.iter().map(|i| parse_id(field, i)).collect()
}

fn unit(id: uuid::Uuid, name: String) -> OrgUnit {
    OrgUnit { id: ID(id.to_string()), name }
}

#[derive(Default)]
pub struct TeamQuery;

#[Object]
impl TeamQuery {
    /// The workspace's staff. Contact details follow your field access.
    async fn users(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<UserFilter>,
    ) -> AppResult<Connection<String, User, ListInfo, EmptyFields>> {
        let p = user(ctx)?;
        let w = Window::new(&p.grants, "users", repo::users::USERS_ORDER, first, after.as_deref())?;
        let f = filter.unwrap_or_default();
        let filter = repo::users::UserFilter {
            search: f.search,
            active: f.active,
            department_id: f.department_id.as_ref().map(|i| parse_id("filter.departmentId", i)).transpose()?,
            team_id: f.team_id.as_ref().map(|i| parse_id("filter.teamId", i)).transpose()?,
        };
        let db = &state(ctx)?.db;
        let total = if wants_total(ctx) { Some(repo::users::count(db, p.workspace_id, &filter).await?) } else { None };
        let (rows, more) = w.split(repo::users::list(db, p.workspace_id, &filter, w.after(), w.fetch()).await?);
        let node = ctx.look_ahead().field("edges").field("node");
        let org = if ["department", "team", "primaryGroup", "groups", "role"].iter().any(|f| node.field(f).exists()) {
            let ids: Vec<(uuid::Uuid, Option<uuid::Uuid>)> = rows.iter().map(|u| (u.id, u.primary_group_id)).collect();
            Some(std::sync::Arc::new(OrgDirectory::load(db, p.workspace_id, &ids).await?))
        } else {
            None
        };
        let mut edges = Vec::with_capacity(rows.len());
        for u in rows {
            let at = repo::seek::seek_of(&u, u.id, w.order())?;
            let mut user = User::project(u, Viewing::As(&p.grants, p.user_id));
            user.org = org.clone();
            edges.push((at, user));
        }
        w.connection(edges, more, total)
    }

    async fn user(&self, ctx: &Context<'_>, id: ID) -> AppResult<User> {
        let p = user(ctx)?;
        let u = repo::users::get(&state(ctx)?.db, p.workspace_id, parse_id("id", &id)?).await?.ok_or(AppError::NotFound)?;
        Ok(User::project(u, Viewing::As(&p.grants, p.user_id)))
    }

    async fn departments(&self, ctx: &Context<'_>) -> AppResult<Vec<OrgUnit>> {
        let p = user(ctx)?;
        Ok(repo::org::departments(&state(ctx)?.db, p.workspace_id).await?.into_iter().map(|d| unit(d.id, d.name)).collect())
    }

    async fn teams(&self, ctx: &Context<'_>) -> AppResult<Vec<OrgUnit>> {
        let p = user(ctx)?;
        Ok(repo::org::teams(&state(ctx)?.db, p.workspace_id).await?.into_iter().map(|t| unit(t.id, t.name)).collect())
    }

    async fn groups(&self, ctx: &Context<'_>) -> AppResult<Vec<OrgUnit>> {
        let p = user(ctx)?;
        Ok(repo::org::groups(&state(ctx)?.db, p.workspace_id).await?.into_iter().map(|g| unit(g.id, g.name)).collect())
    }
}

/// A user as this mutation left them: their groups, placement and roles are read in
/// the mutation's own transaction, not from what was committed before it.
async fn as_written(tx: &Tx<'_>, p: &crate::auth::UserPrincipal, u: entity::user::Model) -> AppResult<User> {
    let org = OrgDirectory::load(tx.db(), p.workspace_id, &[(u.id, u.primary_group_id)]).await?;
    let mut user = User::project(u, Viewing::As(&p.grants, p.user_id));
    user.org = Some(std::sync::Arc::new(org));
    Ok(user)
}

#[derive(Default)]
pub struct TeamMutation;

#[Object]
impl TeamMutation {
    /// Adds a staff member (needs a free seat). Give them roles with `assignRole`.
    async fn create_user(&self, ctx: &Context<'_>, input: CreateUserInput) -> AppResult<User> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let rest = UserPatch {
            phone: input.phone.map_or(Patch::Keep, Patch::Set),
            department_id: input.department_id.as_ref().map(|i| parse_id("departmentId", i)).transpose()?.map_or(Patch::Keep, Patch::Set),
            team_id: input.team_id.as_ref().map(|i| parse_id("teamId", i)).transpose()?.map_or(Patch::Keep, Patch::Set),
            primary_group_id: input
                .primary_group_id
                .as_ref()
                .map(|i| parse_id("primaryGroupId", i))
                .transpose()?
                .map_or(Patch::Keep, Patch::Set),
            group_ids: Some(ids("groupIds", &input.group_ids)?),
            ..Default::default()
        };
        let u = svc::create_user(
            state(ctx)?,
            &tx,
            p,
            NewUserInput { username: input.username, email: input.email, display_name: input.display_name, password: input.password, rest },
        )
        .await?;
        as_written(&tx, p, u).await
    }

    /// Changes a staff member ranked below you.
    async fn update_user(&self, ctx: &Context<'_>, id: ID, input: UpdateUserInput) -> AppResult<User> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let patch = UserPatch {
            display_name: input.display_name,
            email: input.email,
            phone: patch(input.phone),
            department_id: id_patch("departmentId", input.department_id)?,
            team_id: id_patch("teamId", input.team_id)?,
            primary_group_id: id_patch("primaryGroupId", input.primary_group_id)?,
            group_ids: input.group_ids.as_deref().map(|g| ids("groupIds", g)).transpose()?,
            active: input.active,
            licensed: input.licensed,
            licence_ends_at: patch(input.licence_ends_at),
        };
        let u = svc::update_user(state(ctx)?, &tx, p, parse_id("id", &id)?, patch).await?;
        as_written(&tx, p, u).await
    }

    async fn create_department(&self, ctx: &Context<'_>, name: String) -> AppResult<OrgUnit> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let (id, name) = svc::create_unit(state(ctx)?, &tx, p, Unit::Department, &name, None).await?;
        Ok(unit(id, name))
    }

    async fn create_team(&self, ctx: &Context<'_>, name: String, department_id: Option<ID>) -> AppResult<OrgUnit> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let dept = department_id.as_ref().map(|d| parse_id("departmentId", d)).transpose()?;
        let (id, name) = svc::create_unit(state(ctx)?, &tx, p, Unit::Team, &name, dept).await?;
        Ok(unit(id, name))
    }

    async fn create_group(&self, ctx: &Context<'_>, name: String) -> AppResult<OrgUnit> {
        let (p, tx) = (user(ctx)?, Tx::current(ctx)?);
        let (id, name) = svc::create_unit(state(ctx)?, &tx, p, Unit::Group, &name, None).await?;
        Ok(unit(id, name))
    }
}
