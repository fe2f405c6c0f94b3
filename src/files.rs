//! Files written so that a reader never sees half of one: the bytes go to a temporary file in
//! the same folder, which is synced and then renamed over the target. An interrupted write
//! leaves the old file as it was (and at worst a stray temporary file, never a truncated
//! target).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// `name` made safe as one path component: every character but ASCII letters, digits, `-`
/// and `_` becomes `_` (a series or metric name may hold `/`, `{` or quotes).
///
/// ```
/// assert_eq!(prescale::files::path_component("up{job=\"a/b\"}"), "up_job__a_b__");
/// ```
pub fn path_component(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes `bytes` to `path` atomically, creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Writes to `path` atomically whatever `fill` writes, creating parent folders. The file
/// appears at `path` only if `fill` succeeds and the data reached the disk. A file replaced
/// keeps its permissions; a new one gets those a shell redirect would give it (0666 less the
/// umask), not the temporary file's owner-only 0600.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir
        }
        None => Path::new("."),
    };
    let replaced = std::fs::metadata(path).ok().map(|m| m.permissions());
    let mut temp = tempfile::Builder::new()
        .prefix(".prescale-")
        .suffix(".tmp")
        // The mode a new file is opened with, which the umask then narrows.
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .tempfile_in(dir)?;
    if let Some(p) = replaced {
        temp.as_file().set_permissions(p)?;
    }
    fill(temp.as_file_mut())?;
    temp.as_file_mut().flush()?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|e| e.error)?;
    // The rename is durable once the folder's entry is (on Linux; elsewhere a no-op).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Largest configuration (YAML) file read: a thousand workloads fit in far less.
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;
/// Largest model file or network file read (the bundled networks are a few hundred KB).
pub const MAX_MODEL_BYTES: u64 = 1 << 30;

/// Reads a whole regular file of at most `max` bytes. Anything else (a device such as
/// `/dev/zero`, a FIFO, a folder, a larger file) is an `InvalidInput` error saying which,
/// found before more than `max` bytes are read, so a wrong path never reads forever.
pub fn read_limited(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a device, a pipe or a folder)",
        ));
    }
    let mut bytes = Vec::new();
    // `take` as well as the size: a file can grow while it is read.
    io::Read::take(file, max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max || meta.len() > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("larger than the {max} bytes read for such a file"),
        ));
    }
    Ok(bytes)
}

/// [`read_limited`] as UTF-8 text.
pub fn read_limited_text(path: &Path, max: u64) -> io::Result<String> {
    String::from_utf8(read_limited(path, max)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// An output that would overwrite one of the command's own inputs.
#[derive(Debug, thiserror::Error)]
#[error("{} is also an input ({}): writing there would destroy it; choose another output path", output.display(), input.display())]
pub struct OverwritesInput {
    /// The output asked for.
    pub output: PathBuf,
    /// The input it names (possibly by another path: a link, `./`, `..`).
    pub input: PathBuf,
}

/// Refuses an `output` that is the same file as any of `inputs`, however each is spelled
/// (relative, through `..` or a symbolic link, or a hard link). An output that does not exist
/// yet cannot be an input.
pub fn refuse_overwriting_inputs<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), OverwritesInput> {
    let Ok(out) = std::fs::metadata(output) else {
        return Ok(());
    };
    for input in inputs {
        if let Ok(inp) = std::fs::metadata(input) {
            if same_file(&out, &inp) {
                return Err(OverwritesInput {
                    output: output.to_path_buf(),
                    input: input.to_path_buf(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

#[cfg(not(unix))]
fn same_file(_: &std::fs::Metadata, _: &std::fs::Metadata) -> bool {
    // Only Unix is supported for deployment; elsewhere the check is skipped.
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_oversized_files_are_refused_before_reading_them() {
        for path in ["/dev/zero", "/tmp"] {
            let e = read_limited(Path::new(path), 1 << 20).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{path}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'a'; 101]).unwrap();
        let e = read_limited(&big, 100).unwrap_err();
        assert!(e.to_string().contains("larger than the 100 bytes"), "{e}");
        assert_eq!(read_limited_text(&big, 101).unwrap().len(), 101);
    }

    #[test]
    fn an_input_is_refused_as_output_by_any_spelling() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("load.csv");
        std::fs::write(&input, "timestamp,value\n").unwrap();
        let linked = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&input, &linked).unwrap();
        let dotted = dir.path().join("sub/../load.csv");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for output in [&input, &linked, &dotted] {
            let e = refuse_overwriting_inputs(output, [input.as_path()]).unwrap_err();
            assert!(e.to_string().contains("choose another output path"), "{e}");
        }
        let fresh = dir.path().join("forecast.csv");
        refuse_overwriting_inputs(&fresh, [input.as_path()]).unwrap();
        std::fs::write(&fresh, "old").unwrap();
        refuse_overwriting_inputs(&fresh, [input.as_path()]).unwrap();
    }

    #[test]
    fn new_files_get_the_umask_s_mode_and_replaced_ones_keep_theirs() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("table.csv");
        write_atomic(&fresh, b"a").unwrap();
        // What the process's umask gives a file created the ordinary way.
        let ordinary = dir.path().join("ordinary.csv");
        std::fs::write(&ordinary, b"a").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), mode(&ordinary));
        let kept = dir.path().join("config.yaml");
        std::fs::write(&kept, b"old").unwrap();
        std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&kept, b"new").unwrap();
        assert_eq!(mode(&kept), 0o640);
        assert_eq!(std::fs::read(&kept).unwrap(), b"new");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/state.json");
        write_atomic(&path, b"old").unwrap();
        let err = write_atomic_with(&path, |w| {
            w.write_all(b"half of the ne")?;
            Err(io::Error::other("interrupted"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "interrupted");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }
}
