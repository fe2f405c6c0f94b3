//! The progress bar of the long-running commands.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar of `len` `units` on stderr when it is a terminal; hidden otherwise (CI
/// logs, pipes), so logs hold results rather than redraws.
pub(super) fn bar(len: usize, units: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    let template =
        format!("{{bar:40}} {{pos}}/{{len}} {units}, {{elapsed}} elapsed, ~{{eta}} left");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}
