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
    check_download(p, matching)?;
    if matching > MAX_ROWS {
        return Err(AppError::Denied(format!(
            "{matching} records match; an export in the answer holds at most {MAX_ROWS} (narrow the filter, or download it)"
        )));
    }
    let allowed = u64::from(p.grants.restrictions.max_records_per_request);
    Ok(allowed.min(MAX_ROWS))
}

/// The dataExport restriction and at most maxRecordsPerRequest rows, for an export
/// that is downloaded (streamed), which `MAX_ROWS` does not bound.
pub fn check_download(p: &UserPrincipal, matching: u64) -> AppResult<()> {
    if !p.grants.restrictions.data_export {
        return Err(AppError::Denied("your roles do not allow data export".into()));
    }
    let allowed = u64::from(p.grants.restrictions.max_records_per_request);
    if matching > allowed {
        return Err(AppError::Denied(format!(
            "{matching} records match; your roles export at most {allowed} at a time (narrow the filter)"
        )));
    }
    Ok(())
}

/// Rows a streamed export reads at a time.
pub const STREAM_BATCH: u64 = 1_000;

/// A file streamed as the receiver takes it: `next(cursor)` reads the batch after
/// `cursor` (None: the first) as rows, with the cursor of its last row; a batch shorter
/// than `STREAM_BATCH` is the last. An error, or more than `max` rows in all, ends the
/// stream with `Err`, so a download fails instead of ending short. Memory holds a batch.
pub fn stream<C, F, Fut>(columns: &[&str], format: ExportFormat, max: u64, mut next: F) -> tokio::sync::mpsc::Receiver<AppResult<String>>
where
    C: Send + 'static,
    F: FnMut(Option<C>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = AppResult<(Vec<Vec<Value>>, Option<C>)>> + Send,
{
    let (send, receive) = tokio::sync::mpsc::channel(2);
    let mut file = Pieces::new(columns, format);
    tokio::spawn(async move {
        if send.send(Ok(file.head())).await.is_err() {
            return;
        }
        let (mut cursor, mut sent) = (None, 0u64);
        loop {
            let (rows, last) = match next(cursor.take()).await {
                Ok(batch) => batch,
                Err(e) => {
                    let _ = send.send(Err(e)).await;
                    return;
                }
            };
            sent += rows.len() as u64;
            if sent > max {
                let _ = send.send(Err(AppError::Denied(format!("more than {max} records match now")))).await;
                return;
            }
            let full = rows.len() as u64 == STREAM_BATCH;
            if send.send(file.rows(rows)).await.is_err() {
                return;
            }
            match last {
                Some(c) if full => cursor = Some(c),
                _ => break,
            }
        }
        let _ = send.send(Ok(file.tail().to_owned())).await;
    });
    receive
}

/// A spreadsheet must not run a cell as a formula.
fn csv_cell(s: &str) -> String {
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if guarded.contains([',', '"', '\n', '\r']) { format!("\"{}\"", guarded.replace('"', "\"\"")) } else { guarded }
}

/// `rows` in `format`, each row's values in the order of `columns`. In CSV a null is an
/// empty cell and a structured value its compact JSON.
pub fn render(columns: &[&str], rows: Vec<Vec<Value>>, format: ExportFormat) -> AppResult<String> {
    let mut file = Pieces::new(columns, format);
    let mut out = file.head();
    out.push_str(&file.rows(rows)?);
    out.push_str(file.tail());
    Ok(out)
}

/// A file rendered a batch of rows at a time, for a download that streams: head, then
/// each batch's rows, then tail are, end to end, the bytes `render` makes of all rows.
pub struct Pieces {
    columns: Vec<String>,
    format: ExportFormat,
    first: bool,
}

impl Pieces {
    pub fn new(columns: &[&str], format: ExportFormat) -> Self {
        Self { columns: columns.iter().map(|c| (*c).to_owned()).collect(), format, first: true }
    }

    pub fn head(&self) -> String {
        match self.format {
            ExportFormat::Json => "[".to_owned(),
            ExportFormat::Csv => self.columns.join(",") + "\n",
        }
    }

    pub fn rows(&mut self, rows: Vec<Vec<Value>>) -> AppResult<String> {
        let mut out = String::new();
        for r in rows {
            match self.format {
                ExportFormat::Json => {
                    if !self.first {
                        out.push(',');
                    }
                    let object = Value::Object(self.columns.iter().cloned().zip(r).collect());
                    out.push_str(&serde_json::to_string(&object).map_err(AppError::internal)?);
                }
                ExportFormat::Csv => {
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
            }
            self.first = false;
        }
        Ok(out)
    }

    pub fn tail(&self) -> &'static str {
        match self.format {
            ExportFormat::Json => "]",
            ExportFormat::Csv => "",
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

    #[test]
    fn pieces_make_the_same_file_as_one_render() {
        let rows: Vec<Vec<Value>> = (0..5).map(|i| vec![json!(i), json!(format!("r{i}"))]).collect();
        for format in [ExportFormat::Csv, ExportFormat::Json] {
            let mut pieces = Pieces::new(&["n", "s"], format);
            let mut streamed = pieces.head();
            streamed.push_str(&pieces.rows(rows[..2].to_vec()).unwrap());
            streamed.push_str(&pieces.rows(Vec::new()).unwrap());
            streamed.push_str(&pieces.rows(rows[2..].to_vec()).unwrap());
            streamed.push_str(pieces.tail());
            assert_eq!(streamed, render(&["n", "s"], rows.clone(), format).unwrap(), "{format:?}");
        }
        let empty = Pieces::new(&["n"], ExportFormat::Json);
        assert_eq!(empty.head() + empty.tail(), "[]");
    }
}
