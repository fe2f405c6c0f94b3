//! The audit log: what prescale did and to what, as JSONL records shaped like Kubernetes
//! audit events, chained with SHA-256 so that no record can be edited, deleted, reordered or
//! inserted after the fact without [`verify`] naming the first bad sequence number.
//!
//! ```json
//! {"kind":"Event","apiVersion":"audit.prescale.dev/v1","seq":2,"time":"2026-12-02T13:00:15.000Z",
//!  "actor":"prescale-serve","action":"publish","object":{"resource":"workloads","namespace":"demo",
//!  "name":"taxi"},"before":"9f2c…","after":"41d0…","outcome":"success",
//!  "annotations":{"desired":"12","reason":"…"},"prev":"77ab…","hash":"c3e1…"}
//! ```
//!
//! Each record's `hash` is the SHA-256 of the record itself written with an empty `hash`, and
//! its `prev` is the `hash` of the record before it (64 zeros for the first record of a
//! chain). Sequence numbers start at 1 and rise by one.
//!
//! [`AuditLog`] appends durably: each record is one `write` of a whole line followed by
//! `fsync`, so a crash leaves at worst a torn last line. That line is never taken for a
//! record: [`verify`] reports it, and [`AuditLog::open`] moves its bytes aside to
//! `<file>.torn-<time>` and appends a `recover` record saying so before going on. When the
//! active file passes its size limit it is renamed to `<file>.<first seq, 12 digits>` and a
//! new file continues the same chain.
//!
//! Without a secret key a chain proves order and integrity, not authorship: someone who
//! rewrites every record from some point on, or drops the newest ones, makes a valid chain.
//! Keep the head hash that [`verify`] returns somewhere else and give it back to
//! [`verify`] (`VerifyOptions::head`) to catch that too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::series::Millis;

/// The `apiVersion` of every record.
pub const API_VERSION: &str = "audit.prescale.dev/v1";
/// The `prev` of the first record of a chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Longest record line read back (a record is a few hundred bytes).
const MAX_LINE: usize = 1 << 20;

/// What a record is about, as a Kubernetes `objectRef`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// The kind of object, plural (`workloads`, `configurations`, `auditlogs`).
    pub resource: String,
    /// Its namespace, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

/// Whether the action took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did.
    Success,
    /// It was refused or failed (the annotations say why).
    Failure,
}

/// What is appended: a record without its chain fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// When it happened, ms since the epoch.
    pub time: Millis,
    /// Who did it (a user, or the component acting on its own).
    pub actor: String,
    /// What was done (`publish`, `load`, `reload`, `recover`).
    pub action: String,
    /// To what.
    pub object: ObjectRef,
    /// SHA-256 (hex) of the object before, when there was one.
    pub before: Option<String>,
    /// SHA-256 (hex) of the object after, when there is one.
    pub after: Option<String>,
    /// Whether it took effect.
    pub outcome: Outcome,
    /// Details worth reading without the object itself (replicas, reason, errors).
    pub annotations: BTreeMap<String, String>,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Record {
    /// Always `Event`.
    pub kind: String,
    /// Always [`API_VERSION`].
    pub api_version: String,
    /// The sequence number, from 1.
    pub seq: u64,
    /// RFC 3339 time, UTC, in milliseconds.
    pub time: String,
    /// See [`Entry::actor`].
    pub actor: String,
    /// See [`Entry::action`].
    pub action: String,
    /// See [`Entry::object`].
    pub object: ObjectRef,
    /// See [`Entry::before`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// See [`Entry::after`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    /// See [`Entry::outcome`].
    pub outcome: Outcome,
    /// See [`Entry::annotations`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The hash of the record before ([`GENESIS`] for the first).
    pub prev: String,
    /// The SHA-256 of this record written with an empty `hash`.
    pub hash: String,
}

impl Record {
    /// The hash this record should carry.
    pub fn compute_hash(&self) -> String {
        let unhashed = Record {
            hash: String::new(),
            ..self.clone()
        };
        // Serialising plain strings, integers and a sorted map cannot fail.
        let bytes = serde_json::to_vec(&unhashed).unwrap_or_default();
        sha256_hex(&bytes)
    }
}

/// SHA-256 of `bytes`, in lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut text = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(text, "{b:02x}");
    }
    text
}

/// RFC 3339 in UTC with milliseconds.
fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Why the log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The chain is broken (or a file is torn) at a record.
    #[error(transparent)]
    Broken(#[from] Broken),
}

/// Where and how the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}, line {line}: record seq {seq}: {problem}", path.display())]
pub struct Broken {
    /// The file.
    pub path: PathBuf,
    /// The line (from 1).
    pub line: usize,
    /// The first bad sequence number.
    pub seq: u64,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The last line has no end: a write was cut short (a crash); it is not a record.
    #[error("the last line is torn ({bytes} bytes without an end of line): a write was cut short")]
    Torn {
        /// Its length.
        bytes: usize,
    },
    /// The line is not a record.
    #[error("not an audit record: {0}")]
    Malformed(String),
    /// A record is missing here (deleted, or moved later).
    #[error("missing: the next record is seq {found} (a record was deleted or moved)")]
    Missing {
        /// The sequence number found instead.
        found: u64,
    },
    /// The record appears again or out of order (inserted, or moved earlier).
    #[error("out of order: found after seq {after} (a record was inserted or moved)")]
    OutOfOrder {
        /// The sequence number of the record before it.
        after: u64,
    },
    /// The record's content does not match its hash: edited.
    #[error("edited: its content does not match its hash")]
    Edited,
    /// The record does not follow the one before (inserted, or an earlier one rewritten).
    #[error("does not follow the record before it (its prev hash differs): inserted, or an earlier record rewritten")]
    Unchained,
    /// The known head was not found: the newest records were dropped or rewritten.
    #[error("the head {head} is not in the log: its newest records were dropped or rewritten")]
    HeadMissing {
        /// The head expected.
        head: String,
    },
}

/// The state a log was found in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Records read.
    pub records: u64,
    /// The first record's sequence number (0 for an empty log).
    pub first_seq: u64,
    /// The last record's sequence number (0 for an empty log).
    pub last_seq: u64,
    /// The last record's hash ([`GENESIS`] for an empty log): keep it elsewhere to detect a
    /// later truncation.
    pub head: String,
    /// The time of the first and last records.
    pub span: Option<(String, String)>,
    /// The files in chain order.
    pub files: Vec<PathBuf>,
}

/// What [`verify`] also checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// A head hash kept from an earlier verification: it must be in the log.
    pub head: Option<String>,
}

/// The order of a log's files: rotated ones (`<name>.<digits>`) by number, the active one
/// (no number) last.
fn chain_order(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut sorted = paths.to_vec();
    sorted.sort_by_key(|p| {
        let n = p
            .extension()
            .and_then(|e| e.to_str())
            .filter(|e| !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|e| e.parse::<u64>().ok());
        (n.unwrap_or(u64::MAX), p.clone())
    });
    sorted.dedup();
    sorted
}

/// Reads a file's lines: the complete ones, and a torn tail when the last has no end.
fn read_lines(path: &Path) -> Result<(Vec<String>, Option<usize>), AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let mut lines = Vec::new();
    let mut rest = &bytes[..];
    while let Some(end) = rest.iter().position(|&b| b == b'\n') {
        lines.push(String::from_utf8_lossy(&rest[..end]).into_owned());
        rest = &rest[end + 1..];
    }
    let torn = (!rest.is_empty()).then_some(rest.len());
    Ok((lines, torn))
}

/// Checks the chain across `paths` (a log and its rotated files, in any order): every
/// record's hash, its link to the one before, and sequence numbers rising by one from 1.
pub fn verify(paths: &[PathBuf], options: &VerifyOptions) -> Result<Verified, AuditError> {
    let files = chain_order(paths);
    let mut expected = 1u64;
    let mut prev = GENESIS.to_string();
    let mut first_time: Option<String> = None;
    let mut last_time = String::new();
    let mut head_seen = options.head.is_none();
    let mut last_place = (PathBuf::new(), 0usize);
    for path in &files {
        let (lines, torn) = read_lines(path)?;
        let broken = |line: usize, seq: u64, problem: Problem| Broken {
            path: path.clone(),
            line,
            seq,
            problem,
        };
        for (i, text) in lines.iter().enumerate() {
            let line = i + 1;
            if text.len() > MAX_LINE {
                return Err(broken(line, expected, Problem::Malformed("too long".into())).into());
            }
            let record: Record = serde_json::from_str(text)
                .map_err(|e| broken(line, expected, Problem::Malformed(e.to_string())))?;
            if record.kind != "Event" || record.api_version != API_VERSION {
                return Err(broken(
                    line,
                    expected,
                    Problem::Malformed(format!(
                        "kind {:?} and apiVersion {:?}, not Event and {API_VERSION}",
                        record.kind, record.api_version
                    )),
                )
                .into());
            }
            if record.seq > expected {
                return Err(broken(line, expected, Problem::Missing { found: record.seq }).into());
            }
            if record.seq < expected {
                return Err(broken(
                    line,
                    record.seq,
                    Problem::OutOfOrder {
                        after: expected - 1,
                    },
                )
                .into());
            }
            if record.compute_hash() != record.hash {
                return Err(broken(line, record.seq, Problem::Edited).into());
            }
            if record.prev != prev {
                return Err(broken(line, record.seq, Problem::Unchained).into());
            }
            if options.head.as_deref() == Some(record.hash.as_str()) {
                head_seen = true;
            }
            first_time.get_or_insert_with(|| record.time.clone());
            last_time = record.time;
            prev = record.hash;
            expected += 1;
            last_place = (path.clone(), line);
        }
        if let Some(bytes) = torn {
            return Err(broken(lines.len() + 1, expected, Problem::Torn { bytes }).into());
        }
    }
    if !head_seen {
        return Err(Broken {
            path: last_place.0,
            line: last_place.1,
            seq: expected,
            problem: Problem::HeadMissing {
                head: options.head.clone().unwrap_or_default(),
            },
        }
        .into());
    }
    let records = expected - 1;
    Ok(Verified {
        records,
        first_seq: u64::from(records > 0),
        last_seq: records,
        head: prev,
        span: first_time.map(|f| (f, last_time)),
        files,
    })
}

/// A torn last line found when a log was opened, moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where its bytes were moved.
    pub saved_to: PathBuf,
    /// How many bytes.
    pub bytes: usize,
    /// The sequence number the torn record would have had.
    pub seq: u64,
}

/// An open log that records are appended to.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    /// Bytes in the active file.
    size: u64,
    /// The first sequence number in the active file (for its name once rotated).
    first_in_file: Option<u64>,
    next_seq: u64,
    prev: String,
    rotate_bytes: Option<u64>,
}

impl AuditLog {
    /// Opens (or creates) the log at `path` to append to, rotating the active file once it
    /// holds `rotate_bytes` or more. The chain goes on from the newest record of the active
    /// file or, when that is empty, of the newest rotated file. A torn last line is moved
    /// aside and returned (the caller appends a record saying so, see [`Self::recover`]).
    pub fn open(
        path: &Path,
        rotate_bytes: Option<u64>,
    ) -> Result<(Self, Option<Recovered>), AuditError> {
        let io = |source| AuditError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        let (lines, torn) = read_lines(path)?;
        let mut newest: Option<Record> = None;
        for text in lines.iter().rev().take(1) {
            newest = Some(serde_json::from_str(text).map_err(|e| Broken {
                path: path.to_path_buf(),
                line: lines.len(),
                seq: 0,
                problem: Problem::Malformed(e.to_string()),
            })?);
        }
        let first_in_file = match lines.first() {
            Some(text) => serde_json::from_str::<Record>(text).ok().map(|r| r.seq),
            None => None,
        };
        if newest.is_none() {
            newest = newest_rotated(path)?;
        }
        let (next_seq, prev) = match &newest {
            Some(r) => {
                if r.compute_hash() != r.hash {
                    return Err(Broken {
                        path: path.to_path_buf(),
                        line: lines.len().max(1),
                        seq: r.seq,
                        problem: Problem::Edited,
                    }
                    .into());
                }
                (r.seq + 1, r.hash.clone())
            }
            None => (1, GENESIS.to_string()),
        };
        let mut recovered = None;
        if let Some(bytes) = torn {
            let total = file.metadata().map_err(io)?.len();
            let keep = total - bytes as u64;
            let mut tail = Vec::with_capacity(bytes);
            file.seek(SeekFrom::Start(keep)).map_err(io)?;
            (&mut file)
                .take(bytes as u64)
                .read_to_end(&mut tail)
                .map_err(io)?;
            let saved_to = PathBuf::from(format!(
                "{}.torn-{}",
                path.display(),
                chrono::Utc::now().timestamp_millis()
            ));
            crate::files::write_atomic(&saved_to, &tail).map_err(|source| AuditError::Io {
                path: saved_to.clone(),
                source,
            })?;
            file.set_len(keep).map_err(io)?;
            file.sync_all().map_err(io)?;
            recovered = Some(Recovered {
                saved_to,
                bytes,
                seq: next_seq,
            });
        }
        let size = file.metadata().map_err(io)?.len();
        Ok((
            Self {
                path: path.to_path_buf(),
                file,
                size,
                first_in_file,
                next_seq,
                prev,
                rotate_bytes,
            },
            recovered,
        ))
    }

    /// The file records are appended to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the newest record ([`GENESIS`] when there is none).
    pub fn head(&self) -> &str {
        &self.prev
    }

    /// Appends the record that says a torn line was moved aside.
    pub fn recover(
        &mut self,
        recovered: &Recovered,
        actor: &str,
        time: Millis,
    ) -> Result<Record, AuditError> {
        let mut annotations = BTreeMap::new();
        annotations.insert("tornBytes".to_string(), recovered.bytes.to_string());
        annotations.insert(
            "savedTo".to_string(),
            recovered.saved_to.display().to_string(),
        );
        self.append(Entry {
            time,
            actor: actor.to_string(),
            action: "recover".to_string(),
            object: ObjectRef {
                resource: "auditlogs".to_string(),
                namespace: None,
                name: self.path.display().to_string(),
            },
            before: None,
            after: None,
            outcome: Outcome::Failure,
            annotations,
        })
    }

    /// Appends `entry` as the next record, durably (written in one piece, then synced), and
    /// returns it. On an error the chain is unchanged and the next append tries again.
    pub fn append(&mut self, entry: Entry) -> Result<Record, AuditError> {
        if let Some(limit) = self.rotate_bytes {
            if self.size >= limit && self.size > 0 {
                self.rotate()?;
            }
        }
        let mut record = Record {
            kind: "Event".to_string(),
            api_version: API_VERSION.to_string(),
            seq: self.next_seq,
            time: rfc3339(entry.time),
            actor: entry.actor,
            action: entry.action,
            object: entry.object,
            before: entry.before,
            after: entry.after,
            outcome: entry.outcome,
            annotations: entry.annotations,
            prev: self.prev.clone(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        let mut line = serde_json::to_vec(&record).unwrap_or_default();
        line.push(b'\n');
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        if let Err(e) = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
        {
            // Whatever part was written is cut off again, so the file stays a chain.
            let _ = self.file.set_len(self.size);
            return Err(io(e));
        }
        self.size += line.len() as u64;
        self.first_in_file.get_or_insert(record.seq);
        self.next_seq += 1;
        self.prev = record.hash.clone();
        Ok(record)
    }

    /// Renames the active file to `<file>.<first seq>` and starts an empty one.
    fn rotate(&mut self) -> Result<(), AuditError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| AuditError::Io { path, source }
        };
        let first = self.first_in_file.unwrap_or(self.next_seq);
        let rotated = PathBuf::from(format!("{}.{first:012}", self.path.display()));
        std::fs::rename(&self.path, &rotated).map_err(io(&rotated))?;
        self.file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        if let Some(dir) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.size = 0;
        self.first_in_file = None;
        Ok(())
    }
}

/// The records of a log's files in chain order, as written: not verified (see [`verify`]),
/// and lines that are not records (a torn tail) are left out.
pub fn records(paths: &[PathBuf]) -> Result<Vec<Record>, AuditError> {
    let mut out = Vec::new();
    for path in chain_order(paths) {
        let (lines, _) = read_lines(&path)?;
        out.extend(lines.iter().filter_map(|l| serde_json::from_str(l).ok()));
    }
    Ok(out)
}

/// The log's files on disk: the rotated ones and the active one.
pub fn files_of(path: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entries = std::fs::read_dir(dir).map_err(|source| AuditError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let n = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            n.strip_prefix(&name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|digits| {
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                })
        })
        .collect();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    Ok(chain_order(&files))
}

/// The newest record of the newest rotated file, if any.
fn newest_rotated(path: &Path) -> Result<Option<Record>, AuditError> {
    let files = files_of(path)?;
    for file in files.iter().rev().filter(|f| f.as_path() != path) {
        let (lines, _) = read_lines(file)?;
        if let Some(text) = lines.last() {
            let record = serde_json::from_str(text).map_err(|e| Broken {
                path: file.clone(),
                line: lines.len(),
                seq: 0,
                problem: Problem::Malformed(e.to_string()),
            })?;
            return Ok(Some(record));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(i: usize) -> Entry {
        let mut annotations = BTreeMap::new();
        annotations.insert("desired".to_string(), (i % 7).to_string());
        Entry {
            time: 1_764_000_000_000 + i as i64 * 15_000,
            actor: "prescale-serve".into(),
            action: "publish".into(),
            object: ObjectRef {
                resource: "workloads".into(),
                namespace: Some("demo".into()),
                name: format!("w{}", i % 3),
            },
            before: (i > 0).then(|| sha256_hex(&[i as u8 - 1])),
            after: Some(sha256_hex(&[i as u8])),
            outcome: Outcome::Success,
            annotations,
        }
    }

    /// A log of `n` records as its lines.
    fn chain(n: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (mut log, _) = AuditLog::open(&path, None).unwrap();
        for i in 0..n {
            log.append(entry(i)).unwrap();
        }
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    fn verify_lines(lines: &[String]) -> Result<Verified, AuditError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut text = lines.join("\n");
        if !lines.is_empty() {
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
        verify(&[path], &VerifyOptions::default())
    }

    fn first_bad(result: Result<Verified, AuditError>) -> (u64, Problem) {
        match result {
            Err(AuditError::Broken(b)) => (b.seq, b.problem),
            other => panic!("not caught: {other:?}"),
        }
    }

    #[test]
    fn a_fresh_chain_verifies_and_reopening_continues_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (mut log, torn) = AuditLog::open(&path, None).unwrap();
        assert!(torn.is_none());
        for i in 0..3 {
            log.append(entry(i)).unwrap();
        }
        drop(log);
        let (mut log, _) = AuditLog::open(&path, None).unwrap();
        assert_eq!(log.next_seq(), 4);
        let last = log.append(entry(3)).unwrap();
        let v = verify(&[path], &VerifyOptions::default()).unwrap();
        assert_eq!((v.records, v.first_seq, v.last_seq), (4, 1, 4));
        assert_eq!(v.head, last.hash);
        assert_eq!(v.span.unwrap().0, "2025-11-24T16:00:00.000Z");
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_bad_record() {
        let good = chain(6);
        assert!(verify_lines(&good).is_ok());
        // Edited: seq 3's actor.
        let mut edited = good.clone();
        edited[2] = edited[2].replace("prescale-serve", "mallory");
        assert_eq!(first_bad(verify_lines(&edited)), (3, Problem::Edited));
        // Edited and its hash recomputed: the next record no longer follows it.
        let mut rehashed = good.clone();
        let mut r: Record = serde_json::from_str(&rehashed[2]).unwrap();
        r.actor = "mallory".into();
        r.hash = r.compute_hash();
        rehashed[2] = serde_json::to_string(&r).unwrap();
        assert_eq!(first_bad(verify_lines(&rehashed)), (4, Problem::Unchained));
        // Deleted: seq 4.
        let mut deleted = good.clone();
        deleted.remove(3);
        assert_eq!(
            first_bad(verify_lines(&deleted)),
            (4, Problem::Missing { found: 5 })
        );
        // Reordered: seq 2 and 3 swapped.
        let mut reordered = good.clone();
        reordered.swap(1, 2);
        assert_eq!(
            first_bad(verify_lines(&reordered)),
            (2, Problem::Missing { found: 3 })
        );
        // Inserted: a well-formed record claiming seq 3, chained to seq 2.
        let mut inserted = good.clone();
        let mut fake: Record = serde_json::from_str(&good[2]).unwrap();
        fake.annotations.insert("desired".into(), "99".into());
        fake.hash = fake.compute_hash();
        inserted.insert(2, serde_json::to_string(&fake).unwrap());
        assert_eq!(
            first_bad(verify_lines(&inserted)),
            (3, Problem::OutOfOrder { after: 3 })
        );
        // Truncated: caught only against a head kept elsewhere.
        let head = verify_lines(&good).unwrap().head;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, good[..5].join("\n") + "\n").unwrap();
        let options = VerifyOptions { head: Some(head) };
        assert!(matches!(
            first_bad(verify(&[path], &options)),
            (6, Problem::HeadMissing { .. })
        ));
    }

    #[test]
    fn a_torn_last_line_is_reported_then_moved_aside_with_a_record_saying_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let good = chain(3);
        let torn = &good[2][..good[2].len() / 2];
        std::fs::write(&path, format!("{}\n{}\n{torn}", good[0], good[1])).unwrap();
        let err = verify(std::slice::from_ref(&path), &VerifyOptions::default()).unwrap_err();
        assert!(err
            .to_string()
            .contains("line 3: record seq 3: the last line is torn"));
        let (mut log, recovered) = AuditLog::open(&path, None).unwrap();
        let recovered = recovered.expect("the torn line is reported");
        assert_eq!((recovered.seq, recovered.bytes), (3, torn.len()));
        assert_eq!(std::fs::read(&recovered.saved_to).unwrap(), torn.as_bytes());
        let r = log.recover(&recovered, "prescale-serve", 0).unwrap();
        assert_eq!((r.seq, r.action.as_str()), (3, "recover"));
        let v = verify(&[path], &VerifyOptions::default()).unwrap();
        assert_eq!(v.last_seq, 3);
    }

    #[test]
    fn rotation_keeps_one_chain_across_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let (mut log, _) = AuditLog::open(&path, Some(1000)).unwrap();
        for i in 0..12 {
            log.append(entry(i)).unwrap();
        }
        drop(log);
        let files = files_of(&path).unwrap();
        assert!(files.len() >= 3, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(".000000000001"));
        // Given in any order (a shell glob puts the active file first).
        let mut shuffled = files.clone();
        shuffled.reverse();
        let v = verify(&shuffled, &VerifyOptions::default()).unwrap();
        assert_eq!(v.last_seq, 12);
        assert_eq!(v.files, files);
        // Reopened after rotation with an empty active file, the chain still goes on.
        std::fs::rename(&path, dir.path().join("audit.jsonl.000000000099")).unwrap();
        let (log, _) = AuditLog::open(&path, Some(1000)).unwrap();
        assert_eq!(log.next_seq(), 13);
        // A whole rotated file deleted breaks the chain at its first record.
        std::fs::remove_file(&files[1]).unwrap();
        let left = files_of(&path).unwrap();
        let err = verify(&left, &VerifyOptions::default()).unwrap_err();
        assert!(matches!(
            err,
            AuditError::Broken(Broken {
                problem: Problem::Missing { .. },
                ..
            })
        ));
    }

    #[derive(Debug, Clone)]
    enum Mutation {
        Edit { field: usize },
        Delete,
        Swap,
        Insert,
        Duplicate,
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        prop_oneof![
            (0usize..5).prop_map(|field| Mutation::Edit { field }),
            Just(Mutation::Delete),
            Just(Mutation::Swap),
            Just(Mutation::Insert),
            Just(Mutation::Duplicate),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Every mutation of a random record is caught at that record, or for an insertion
        /// at the position it took.
        #[test]
        fn every_mutation_is_caught(n in 2usize..25, at in 0usize..1000, m in mutation()) {
            let good = chain(n);
            let mut lines = good.clone();
            // Deleting or swapping the newest record needs a head to be seen; those are
            // checked with one below.
            let k = at % (n - 1);
            let seq = k as u64 + 1;
            let expected: Vec<u64> = match &m {
                Mutation::Edit { field } => {
                    let mut v: serde_json::Value = serde_json::from_str(&lines[k]).unwrap();
                    let o = v.as_object_mut().unwrap();
                    match field {
                        0 => { o.insert("actor".into(), "mallory".into()); }
                        1 => { o.insert("time".into(), "2020-01-01T00:00:00.000Z".into()); }
                        2 => { o["annotations"]["desired"] = "1000".into(); }
                        3 => { o.insert("after".into(), sha256_hex(b"forged").into()); }
                        _ => { o.insert("outcome".into(), "failure".into()); }
                    }
                    lines[k] = serde_json::to_string(&v).unwrap();
                    vec![seq]
                }
                Mutation::Delete => { lines.remove(k); vec![seq] }
                Mutation::Swap => { lines.swap(k, k + 1); vec![seq] }
                Mutation::Insert => {
                    let mut fake: Record = serde_json::from_str(&good[k]).unwrap();
                    fake.actor = "mallory".into();
                    fake.hash = fake.compute_hash();
                    lines.insert(k, serde_json::to_string(&fake).unwrap());
                    vec![seq]
                }
                Mutation::Duplicate => { lines.insert(k + 1, good[k].clone()); vec![seq] }
            };
            let (bad, _) = first_bad(verify_lines(&lines));
            prop_assert!(expected.contains(&bad), "{m:?} at seq {seq}: reported {bad}");
        }

        /// Dropping the newest records is caught against the head kept from before.
        #[test]
        fn truncation_is_caught_against_the_head(n in 2usize..20, drop in 1usize..5) {
            let good = chain(n);
            let head = verify_lines(&good).unwrap().head;
            let keep = n.saturating_sub(drop).max(1);
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("audit.jsonl");
            std::fs::write(&path, good[..keep].join("\n") + "\n").unwrap();
            let options = VerifyOptions { head: Some(head) };
            let result = verify(&[path], &options);
            let caught = matches!(
                result,
                Err(AuditError::Broken(Broken { problem: Problem::HeadMissing { .. }, .. }))
            );
            prop_assert!(caught);
        }
    }
}
