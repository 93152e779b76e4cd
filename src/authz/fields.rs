//! Field-level security: the one function that decides what a principal sees of a
//! sensitive value, and the check that guards writes.
//!
//! Guarantees: a value leaves only through `Protected`, built by `protect` from the
//! principal's access to that field: WRITE and READ give the value, MASKED gives the
//! field's own mask, NONE gives nothing (the GraphQL layer answers null with a
//! FIELD_FORBIDDEN error at that path). A write that sets a field without WRITE access
//! is refused before anything is written.

use super::catalog::{FieldAccess, SensitiveField};
use super::eval::Grants;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protected {
    Value(Option<String>),
    Masked(String),
    Forbidden(SensitiveField),
}

pub fn protect(g: &Grants, field: SensitiveField, value: Option<String>) -> Protected {
    match g.field(field) {
        FieldAccess::Read | FieldAccess::Write => Protected::Value(value),
        FieldAccess::Masked => match value {
            Some(v) => Protected::Masked(field.mask().apply(&v)),
            None => Protected::Value(None),
        },
        FieldAccess::None => Protected::Forbidden(field),
    }
}

/// Refuses the write if any of `fields` (those present in an input) lacks WRITE.
pub fn require_write(g: &Grants, fields: &[SensitiveField]) -> Result<(), AppError> {
    match fields.iter().find(|f| g.field(**f) < FieldAccess::Write) {
        Some(f) => Err(AppError::FieldForbidden(f.key().to_owned())),
        None => Ok(()),
    }
}

/// Refuses filtering or ordering by a field the principal cannot read in full.
pub fn require_read(g: &Grants, field: SensitiveField) -> Result<(), AppError> {
    if g.field(field) < FieldAccess::Read { Err(AppError::FieldForbidden(field.key().to_owned())) } else { Ok(()) }
}
