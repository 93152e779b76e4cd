//! Field-level security: the one function that decides what a principal sees of a
//! sensitive value, and the check that guards writes.
//!
//! Guarantees: a value leaves only through `Protected`, built by `protect` from the
//! principal's access to that field: WRITE and READ give the value, MASKED gives the
//! field's own mask, NONE gives nothing (the GraphQL layer answers null with a
//! FIELD_FORBIDDEN error at that path). A value of a field that is audited on read
//! comes out as `Audited`, so the GraphQL layer can record that it was shown. A write
//! that sets a field without WRITE access is refused before anything is written. The
//! same rules apply to the before/after values of audit entries (`mask_changes`).

use super::catalog::{FieldAccess, SensitiveField};
use super::eval::Grants;
use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protected {
    Value(Option<String>),
    /// A value shown in full whose reading is audited (`SensitiveField::audited_on_read`).
    Audited(SensitiveField, String),
    Masked(String),
    Forbidden(SensitiveField),
}

impl Protected {
    /// The value as it may be shown (the mask at MASKED, nothing at NONE), for exports.
    pub fn shown(self) -> Option<String> {
        match self {
            Self::Value(v) => v,
            Self::Audited(_, v) | Self::Masked(v) => Some(v),
            Self::Forbidden(_) => None,
        }
    }
}

pub fn protect(g: &Grants, field: SensitiveField, value: Option<String>) -> Protected {
    match g.field(field) {
        FieldAccess::Read | FieldAccess::Write => match value {
            Some(v) if field.audited_on_read() => Protected::Audited(field, v),
            other => Protected::Value(other),
        },
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

/// An audit entry's `{field: {before, after}}` as `g` may see it: the values of each
/// sensitive field of `module` pass the reader's access like the field itself would
/// (MASKED: the mask of each value; NONE: the change shows as null, so the reader learns
/// only that the field changed). Stored secrets are "[redacted]" and stay so.
pub fn mask_changes(g: &Grants, module: &str, changes: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let Value::Object(mut map) = changes else { return changes };
    for f in SensitiveField::ALL.iter().copied().filter(|f| f.module().as_str() == module) {
        let Some(v) = map.get_mut(f.field_name()) else { continue };
        match g.field(f) {
            FieldAccess::Read | FieldAccess::Write => {}
            FieldAccess::None => *v = Value::Null,
            FieldAccess::Masked => {
                if let Value::Object(sides) = v {
                    for side in sides.values_mut() {
                        if let Value::String(text) = side
                            && text != crate::domain::REDACTED
                        {
                            *side = Value::String(f.mask().apply(text));
                        } else if !side.is_null() && !side.is_string() {
                            *side = Value::String(f.mask().apply(&side.to_string()));
                        }
                    }
                } else {
                    *v = Value::Null;
                }
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn audit_changes_follow_the_readers_field_access() {
        let mut g = Grants::default();
        g.fields.insert(SensitiveField::CustomerEmail, FieldAccess::Masked);
        g.fields.insert(SensitiveField::CustomerPhone, FieldAccess::Read);
        let changes = json!({
            "name": { "before": "A", "after": "B" },
            "email": { "before": "a@x.example", "after": "[redacted]" },
            "phone": { "before": "+44 1234 5678", "after": null },
            "taxId": { "before": "[redacted]", "after": "[redacted]" },
        });
        let seen = mask_changes(&g, "customers", changes.clone());
        assert_eq!(seen["name"], changes["name"]);
        assert_eq!(seen["email"], json!({ "before": "•••@x.example", "after": "[redacted]" }));
        assert_eq!(seen["phone"], changes["phone"]);
        assert_eq!(seen["taxId"], serde_json::Value::Null, "no access: only that it changed");
        // Another module's field names are left to that module's rules.
        assert_eq!(mask_changes(&g, "orders", changes.clone())["taxId"], changes["taxId"]);
    }
}
