//! What the HTTP layer hands to every resolver, and typed accessors for it.

use crate::auth::{Principal, UserPrincipal};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use async_graphql::Context;

pub use crate::auth::RequestMeta;

pub fn state<'a>(ctx: &Context<'a>) -> AppResult<&'a AppState> {
    ctx.data::<AppState>().map_err(|_| AppError::internal("application state missing from schema"))
}

pub fn principal<'a>(ctx: &Context<'a>) -> &'a Principal {
    static ANONYMOUS: Principal = Principal::Anonymous;
    ctx.data_opt::<Principal>().unwrap_or(&ANONYMOUS)
}

pub fn meta<'a>(ctx: &Context<'a>) -> AppResult<&'a RequestMeta> {
    ctx.data::<RequestMeta>().map_err(|_| AppError::internal("request metadata missing"))
}

/// The workspace principal (a staff user or an API key); FORBIDDEN for anyone else.
pub fn user<'a>(ctx: &Context<'a>) -> AppResult<&'a UserPrincipal> {
    match principal(ctx) {
        Principal::User(u) => Ok(u),
        _ => Err(AppError::Forbidden),
    }
}
