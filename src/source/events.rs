//! Holidays and events from a CSV file (`name,start[,end]`), for models that take them
//! (Prophet).

use std::path::Path;

use crate::series::Millis;

use super::timestamp::TimestampFormat;
use super::SourceError;

/// An occurrence without an end lasts one day, as a holiday does.
const DAY: Millis = 86_400_000;

/// One event by name, with each occurrence as `[start, end)` in ms since the epoch.
pub type NamedOccurrences = (String, Vec<(Millis, Millis)>);

/// Reads an events CSV: columns `name,start[,end]` with a header row, times in RFC 3339 or
/// unix seconds (any format [`TimestampFormat`] knows); grouped by name in order of first
/// appearance. Every error names its line.
pub fn read(path: &Path) -> Result<Vec<NamedOccurrences>, SourceError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .map_err(|e| SourceError::from_csv(path, e))?;
    let mut events: Vec<NamedOccurrences> = Vec::new();
    for (row, record) in reader.records().enumerate() {
        let line = row as u64 + 2;
        let record = record.map_err(|e| SourceError::from_csv(path, e))?;
        let bad = |message: String| SourceError::Csv {
            path: path.to_path_buf(),
            line: Some(line),
            message,
        };
        let field = |i: usize| record.get(i).map(str::trim).filter(|f| !f.is_empty());
        let time = |i: usize, what: &str| -> Result<Millis, SourceError> {
            let text = field(i).ok_or_else(|| bad(format!("no {what}")))?;
            TimestampFormat::detect(text)
                .and_then(|f| f.parse(text))
                .ok_or_else(|| {
                    bad(format!(
                        "{what} {text:?} is not a time (RFC 3339 or unix seconds)"
                    ))
                })
        };
        let name = field(0).ok_or_else(|| bad("no name".into()))?;
        let start = time(1, "start")?;
        let end = match field(2) {
            Some(_) => time(2, "end")?,
            None => start.saturating_add(DAY),
        };
        if end <= start {
            return Err(bad("the end is not after the start".into()));
        }
        match events.iter_mut().find(|(n, _)| n == name) {
            Some((_, occurrences)) => occurrences.push((start, end)),
            None => events.push((name.to_string(), vec![(start, end)])),
        }
    }
    if events.is_empty() {
        return Err(SourceError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_group_by_name_and_default_to_one_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.csv");
        std::fs::write(
            &path,
            "name,start,end\nsale,2024-11-29T00:00:00Z,\nsale,2025-11-28T00:00:00Z,2025-11-30T00:00:00Z\nlaunch,1700000000,\n",
        )
        .unwrap();
        let events = read(&path).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].1.len(), 2);
        let (start, end) = events[0].1[0];
        assert_eq!(end - start, DAY);
        assert_eq!(events[1].1[0].0, 1_700_000_000_000);
        std::fs::write(&path, "name,start\nsale,yesterday\n").unwrap();
        let err = read(&path).unwrap_err().to_string();
        assert!(err.contains("line 2") && err.contains("yesterday"), "{err}");
        std::fs::write(&path, "name,start\n").unwrap();
        assert!(matches!(read(&path), Err(SourceError::Empty { .. })));
    }
}
