//! Exports: one rendering for every module (CSV with a header row, or a JSON array of
//! objects) and the restriction checks every export passes.

use crate::auth::UserPrincipal;
use crate::error::{AppError, AppResult};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, async_graphql::Enum)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }
}

/// The most rows one export returns, whatever the roles allow: the file is built in
/// memory and returned inside the GraphQL answer.
pub const MAX_ROWS: u64 = 10_000;

/// The dataExport restriction, and at most maxRecordsPerRequest (and `MAX_ROWS`) rows:
/// a larger export is refused (narrow the filter), never silently cut short. Returns
/// the row limit.
pub fn check(p: &UserPrincipal, matching: u64) -> AppResult<u64> {
    if !p.grants.restrictions.data_export {
        return Err(AppError::Denied("your roles do not allow data export".into()));
    }
    let allowed = u64::from(p.grants.restrictions.max_records_per_request);
    if matching > allowed {
        return Err(AppError::Denied(format!(
            "{matching} records match; your roles export at most {allowed} at a time (narrow the filter)"
        )));
    }
    if matching > MAX_ROWS {
        return Err(AppError::Denied(format!("{matching} records match; an export holds at most {MAX_ROWS} (narrow the filter)")));
    }
    Ok(allowed.min(MAX_ROWS))
}

/// A spreadsheet must not run a cell as a formula.
fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if guarded.contains([',', '"', '\n', '\r']) { format!("\"{}\"", guarded.replace('"', "\"\"")) } else { guarded }
}

/// `rows` in `format`, each row's values in the order of `columns`. In CSV a null is an
/// empty cell and a structured value its compact JSON.
pub fn render(columns: &[&str], rows: Vec<Vec<Value>>, format: ExportFormat) -> AppResult<String> {
    match format {
        ExportFormat::Json => {
            let arr: Vec<Value> =
                rows.into_iter().map(|r| Value::Object(columns.iter().map(|c| (*c).to_owned()).zip(r).collect())).collect();
            serde_json::to_string(&arr).map_err(AppError::internal)
        }
        ExportFormat::Csv => {
            let mut out = columns.join(",") + "\n";
            for r in rows {
                let cells: Vec<String> = r
                    .iter()
                    .map(|v| match v {
                        Value::Null => String::new(),
                        Value::String(s) => csv_cell(s),
                        other => csv_cell(&other.to_string()),
                    })
                    .collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells_are_quoted_and_never_formulas() {
        let rows = vec![vec![json!("=SUM(A1)"), json!("a,b"), Value::Null, json!({ "k": "v\"" })]];
        let csv = render(&["a", "b", "c", "d"], rows.clone(), ExportFormat::Csv).unwrap();
        assert_eq!(
            csv,
            r#"a,b,c,d
'=SUM(A1),"a,b",,"{""k"":""v\""""}"
"#
        );
        let json = render(&["a", "b", "c", "d"], rows, ExportFormat::Json).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap()[0]["d"]["k"], "v\"");
    }
}
