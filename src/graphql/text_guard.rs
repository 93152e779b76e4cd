//! The one check of every string the client sends: argument literals, input fields and
//! variables, after GraphQL has decoded its escapes (`"\u0000"` is a NUL here, not six
//! characters). Control characters are refused with BAD_USER_INPUT naming the field:
//! they break PostgreSQL (NUL), widen SQLite LIKE patterns, and hide text in logs.
//! Tab and newline are allowed only in the multi-line text fields below, and carriage
//! returns besides only in files (an import's `content`, whose CSV lines may end in
//! CRLF; its cells are checked again, field by field, like single writes).
//!
//! Runs once per document, before any resolver, for HTTP and WebSocket alike.

use crate::error::{AppError, AppResult};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Value as ConstValue, Variables};

/// Input fields that hold multi-line text (notes, descriptions, addresses, reasons).
const MULTI_LINE: &[&str] = &["notes", "internalNotes", "description", "bankDetails", "reason"];

/// Arguments that hold a whole file.
const FILES: &[&str] = &["content"];

fn refused(c: char, multi_line: bool, file: bool) -> bool {
    c.is_control() && !(multi_line && matches!(c, '\t' | '\n')) && !(file && matches!(c, '\t' | '\n' | '\r'))
}

fn check_str(s: &str, field: &str) -> AppResult<()> {
    let (multi_line, file) = (MULTI_LINE.contains(&field), FILES.contains(&field));
    if s.chars().any(|c| refused(c, multi_line, file)) {
        let allowed = if file {
            " other than tab, newline and carriage return"
        } else if multi_line {
            " other than tab and newline"
        } else {
            ""
        };
        return Err(AppError::bad_input(field, format!("must not contain control characters{allowed}")));
    }
    Ok(())
}

fn walk_const(v: &ConstValue, field: &str) -> AppResult<()> {
    match v {
        ConstValue::String(s) => check_str(s, field),
        ConstValue::List(items) => items.iter().try_for_each(|i| walk_const(i, field)),
        ConstValue::Object(map) => map.iter().try_for_each(|(k, v)| {
            check_str(k, field)?;
            walk_const(v, k)
        }),
        _ => Ok(()),
    }
}

fn walk_set(set: &SelectionSet, vars: &Variables) -> AppResult<()> {
    for item in &set.items {
        match &item.node {
            Selection::Field(f) => {
                for (name, value) in &f.node.arguments {
                    // Variables are put where they are used, so each is judged under the
                    // name of its argument or input field (multi-line or not).
                    let resolved = value
                        .node
                        .clone()
                        .into_const_with(|var| Ok::<_, ()>(vars.get(&var).cloned().unwrap_or(ConstValue::Null)))
                        .unwrap_or(ConstValue::Null);
                    walk_const(&resolved, name.node.as_str())?;
                }
                walk_set(&f.node.selection_set.node, vars)?;
            }
            Selection::InlineFragment(i) => walk_set(&i.node.selection_set.node, vars)?,
            Selection::FragmentSpread(_) => {}
        }
    }
    Ok(())
}

/// Refuses the document if any string it would pass to a resolver holds a control
/// character (see the module doc). Variable defaults are checked as well; variables
/// the document never uses reach nothing and are not.
pub fn check(doc: &ExecutableDocument, vars: &Variables) -> AppResult<()> {
    for (_, op) in doc.operations.iter() {
        for var in &op.node.variable_definitions {
            if let Some(default) = &var.node.default_value {
                walk_const(&default.node, var.node.name.node.as_str())?;
            }
        }
        walk_set(&op.node.selection_set.node, vars)?;
    }
    for fragment in doc.fragments.values() {
        walk_set(&fragment.node.selection_set.node, vars)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(query: &str, vars: serde_json::Value) -> AppResult<()> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        check(&doc, &Variables::from_json(vars))
    }

    #[test]
    fn escapes_in_literals_and_variables_are_caught_and_named() {
        let e = run(r#"mutation { login(input: { workspace: "demo", login: "own\u0000er", password: "x" }) { token } }"#, json_null());
        assert_eq!(e, Err(AppError::bad_input("login", "must not contain control characters")));
        let e = run("query($s: String) { customers(filter: { search: $s }) { totalCount } }", serde_json::json!({ "s": "a\u{1b}[2J" }));
        assert!(matches!(e, Err(AppError::BadInput { ref field, .. }) if field == "search"), "{e:?}");
        assert!(run("query($s: String) { customers(filter: { search: $s }) { totalCount } }", serde_json::json!({ "s": "a\tb" })).is_err());
        assert!(run("{ __typename }", serde_json::json!({ "unused": "\u{0}" })).is_ok(), "unused variables reach nothing");
    }

    #[test]
    fn multi_line_fields_take_tab_and_newline_only() {
        let q = "mutation($n: String) { updateCustomer(id: \"x\", input: { notes: $n }) { id } }";
        assert!(run(q, serde_json::json!({ "n": "line one\nline\ttwo" })).is_ok());
        assert!(run(q, serde_json::json!({ "n": "carriage\r" })).is_err());
        assert!(run(q, serde_json::json!({ "n": "bell\u{7}" })).is_err());
        assert!(run(q, serde_json::json!({ "n": "c1\u{85}" })).is_err(), "C1 controls too");
    }

    fn json_null() -> serde_json::Value {
        serde_json::Value::Null
    }
}
