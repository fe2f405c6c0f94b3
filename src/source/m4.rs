//! The M4 competition's "wide" CSV: one row per series, its id then its values.
//!
//! Rows have different lengths; empty cells pad the end. M4 files carry no timestamps, so the
//! series start at the epoch with the step the caller gives (one hour for the hourly set).

use std::path::Path;

use crate::series::{Labels, Millis, Series};

use super::csv::parse_value;
use super::SourceError;

/// Reads every series of an M4-format file, in file order, named by their id.
pub fn read_wide(path: &Path, step: Millis) -> Result<Vec<Series>, SourceError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| SourceError::from_csv(path, e))?;
    let mut out = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| SourceError::from_csv(path, e))?;
        let line = record.position().map_or(0, |p| p.line());
        let mut cells = record.iter();
        let id = cells.next().unwrap_or("").trim().to_string();
        if id.is_empty() {
            return Err(SourceError::BadValue {
                path: path.to_path_buf(),
                line,
                column: "id".into(),
                text: String::new(),
            });
        }
        let mut values = Vec::with_capacity(record.len());
        for (i, cell) in cells.enumerate() {
            values.push(parse_value(cell).ok_or_else(|| SourceError::BadValue {
                path: path.to_path_buf(),
                line,
                column: format!("V{}", i + 2),
                text: cell.to_string(),
            })?);
        }
        // Empty cells at the end are padding, not missing samples.
        while values.last().is_some_and(|v| v.is_nan()) {
            values.pop();
        }
        let series = Series::new(Labels::named(id), 0, step, values).map_err(|source| {
            SourceError::InvalidRow {
                path: path.to_path_buf(),
                line,
                source,
            }
        })?;
        out.push(series);
    }
    if out.is_empty() {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// True when a CSV header looks like an M4 wide file (`"V1","V2",...`).
pub fn looks_wide(header: &[String]) -> bool {
    header.len() > 2 && header[0] == "V1" && header[1] == "V2"
}
