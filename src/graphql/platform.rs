//! Platform operations for master admins.

use super::context::state;
use super::gate::Tx;
use super::types::{CreateWorkspaceInput, CreateWorkspacePayload};
use crate::service::workspaces::{self, NewWorkspaceInput};
use async_graphql::{Context, Object, Result};

#[derive(Default)]
pub struct PlatformMutation;

#[Object]
impl PlatformMutation {
    /// Creates a workspace and its Owner (master admins only).
    async fn create_workspace(&self, ctx: &Context<'_>, input: CreateWorkspaceInput) -> Result<CreateWorkspacePayload> {
        let (state, tx) = (state(ctx)?, Tx::current(ctx)?);
        let (ws, owner, event) = workspaces::create(
            state,
            tx.db(),
            NewWorkspaceInput {
                slug: &input.slug,
                name: &input.name,
                owner_username: &input.owner.username,
                owner_email: &input.owner.email,
                owner_password: &input.owner.password,
                check_strength: true,
            },
        )
        .await?;
        tx.audit(event);
        Ok(CreateWorkspacePayload { workspace: ws.into(), owner: super::types::User::project(owner, super::types::Viewing::Full) })
    }
}
