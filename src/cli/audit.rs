//! `prescale audit`: check the hash-chained audit log that `serve` writes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::audit::{self, VerifyOptions};

/// `prescale audit` and its subcommands.
#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check that no record was edited, deleted, reordered or inserted, and that the last
    /// line is whole; names the first bad sequence number and exits 1 when one is found.
    Verify(VerifyArgs),
}

/// Flags of `prescale audit verify`.
#[derive(Debug, Args)]
struct VerifyArgs {
    /// The log's files, rotated ones included (`audit.jsonl*`), in any order.
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    log: Vec<PathBuf>,

    /// A head hash printed by an earlier verification and kept elsewhere: the log must
    /// still hold it (catches dropped newest records).
    #[arg(long, value_name = "SHA256")]
    head: Option<String>,
}

/// Runs `prescale audit`.
pub(super) fn run(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify(v) => {
            let options = VerifyOptions { head: v.head };
            let verified = audit::verify(&v.log, &options)?;
            let span = verified
                .span
                .map(|(a, b)| format!(", {a} to {b}"))
                .unwrap_or_default();
            outln!(
                "ok: {} record(s), seq {} to {}{span}, in {} file(s); head {}",
                verified.records,
                verified.first_seq,
                verified.last_seq,
                verified.files.len(),
                verified.head
            )?;
            Ok(())
        }
    }
}
