//! Authorization: the permission catalog, roles, the evaluator, and the checks that
//! every operation and record goes through.

pub mod builtin;
pub mod catalog;
pub mod check;
pub mod eval;
pub mod fields;
pub mod scope;
