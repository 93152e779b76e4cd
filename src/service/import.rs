//! Imports: one reading of a CSV or JSON file for every module, row by row, and the
//! report every import gives.
//!
//! Guarantees: the file is read on a blocking thread in batches of `BATCH` rows that
//! wait, at most two ahead, for the import to take them; so an import holds a few
//! batches in memory whatever the file's size, and stops reading when the import stops
//! (a refused row count, a cancelled request). The report lists at most
//! `LISTED_PROBLEMS` problems and counts them all.

use super::export::ExportFormat;
use crate::error::{AppError, AppResult};
use serde::de::{Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;
use tokio::sync::mpsc;

/// Rows handed over at a time; also the size of an import's insert statements.
pub const BATCH: usize = 500;
/// Problems a report lists (it counts every one): enough to fix a file, bounded for a
/// file of nothing but bad rows.
pub const LISTED_PROBLEMS: usize = 1000;

/// One row of a file: where it is (the CSV line, counting the header as line 1, or the
/// JSON array's element, counting from 1) and its values by column, JSON values other
/// than strings as their JSON text and null as empty.
pub struct Row {
    pub line: u64,
    pub values: Vec<(String, String)>,
}

/// One bad value of an import: its row's line and the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: u64,
    pub field: String,
    pub message: String,
}

/// What an import did, or (dry run, or any problem) would have done.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub rows: usize,
    pub created: usize,
    /// The first `LISTED_PROBLEMS` problems, in file order.
    pub problems: Vec<Problem>,
    pub problem_count: usize,
}

impl Report {
    pub fn problem(&mut self, p: Problem) {
        self.problem_count += 1;
        if self.problems.len() < LISTED_PROBLEMS {
            self.problems.push(p);
        }
    }
}

/// The rows of `file`, in batches, read on a blocking thread. An unreadable file (a
/// broken header, a malformed line, not a JSON array of objects) ends the batches with
/// BAD_USER_INPUT naming where.
pub fn read(format: ExportFormat, file: Box<dyn std::io::Read + Send>) -> mpsc::Receiver<AppResult<Vec<Row>>> {
    let (send, batches) = mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::with_capacity(BATCH);
        let mut each = |row: Row| {
            batch.push(row);
            batch.len() < BATCH || send.blocking_send(Ok(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)))).is_ok()
        };
        let read = match format {
            ExportFormat::Csv => csv_rows(file, &mut each),
            ExportFormat::Json => json_rows(file, &mut each),
        };
        let last = read.map(|()| batch);
        if !matches!(&last, Ok(b) if b.is_empty()) {
            let _ = send.blocking_send(last);
        }
    });
    batches
}

/// Calls `each` for every row until it answers false.
fn csv_rows(file: impl std::io::Read, each: &mut dyn FnMut(Row) -> bool) -> AppResult<()> {
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| AppError::bad_input("content", format!("the header row cannot be read: {e}")))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, csv::Position::line);
                let values = headers.iter().cloned().zip(record.iter().map(str::to_owned)).collect();
                if !each(Row { line, values }) {
                    return Ok(());
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, csv::Position::line);
                return Err(AppError::bad_input("content", format!("line {line} cannot be read: {e}")));
            }
        }
    }
}

fn json_rows(file: impl std::io::Read, each: &mut dyn FnMut(Row) -> bool) -> AppResult<()> {
    struct Elements<'a>(&'a mut dyn FnMut(Row) -> bool);
    impl<'de> Visitor<'de> for Elements<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of objects")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut line = 0;
            while let Some(item) = seq.next_element::<serde_json::Map<String, Value>>()? {
                line += 1;
                let values = item
                    .into_iter()
                    .map(|(k, v)| {
                        let text = match v {
                            Value::Null => String::new(),
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (k, text)
                    })
                    .collect();
                if !(self.0)(Row { line, values }) {
                    // The import has stopped: the rest is not read, and nobody hears
                    // of this error.
                    return Err(serde::de::Error::custom("the import stopped"));
                }
            }
            Ok(())
        }
    }
    let bad = |e: serde_json::Error| AppError::bad_input("content", format!("must be a JSON array of objects: {e}"));
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(file));
    (&mut de).deserialize_seq(Elements(each)).map_err(bad)?;
    de.end().map_err(bad)
}
