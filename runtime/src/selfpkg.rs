//! The self-contained installer: a `hotfix` binary followed by a package (FORMAT.md §1,
//! §3.2). The binary recognises that it carries a package when its own executable file
//! ends like one — with a zip end-of-central-directory record whose comment is a signature
//! block — which a plain `hotfix` binary never does. Recognising is not trusting: every
//! action of the installer authenticates the whole file, stub included, before it decodes
//! anything in it (FORMAT.md §8).
//!
//! Before it acts, the installer also checks its own file's shape ([`check_own_file`]):
//! that it ends exactly where its signature block does and that its archive parses, so
//! that a copy cut short or with bytes appended is named as such (exit 6) instead of being
//! taken for a plain `hotfix`. What a program cannot check about itself is the code that
//! is running it: a changed byte there may never reach this check (README, "Self-contained
//! installers"); `pkgtool verify FILE` or `hotfix install FILE` is the independent check.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hotfix_schema::Limits;
use hotfix_schema::sigblock::{SIG_BLOCK_LEN, SIG_MAGIC};
use pkgtool::Integrity;

/// Length of a zip end-of-central-directory record without its comment.
const EOCD_LEN: u64 = 22;
/// Its signature, `PK\5\6`.
const EOCD_MAGIC: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];

/// Whether the file at `path` ends like a package: an end record at its fixed distance from
/// the end, or a signature block where the archive comment goes. A damaged tail still
/// counts when one of the two is intact, so that verification reports the damage.
pub fn carries_package(path: &Path) -> io::Result<bool> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let tail_len = EOCD_LEN + SIG_BLOCK_LEN as u64;
    if len < tail_len {
        return Ok(false);
    }
    f.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = Vec::with_capacity(usize::try_from(tail_len).unwrap_or(0));
    f.take(tail_len).read_to_end(&mut tail)?;
    let eocd = tail.get(..4) == Some(&EOCD_MAGIC[..]);
    let at = usize::try_from(EOCD_LEN).unwrap_or(0);
    let sig = tail.get(at..at + SIG_MAGIC.len()) == Some(SIG_MAGIC);
    Ok(eocd || sig)
}

/// The running executable, when it carries a package.
pub fn current() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    carries_package(&exe).ok()?.then_some(exe)
}

/// How far back from the end [`check_own_file`] looks for the end record: as far as bytes
/// appended to an installer are named as appended rather than as a missing package.
const SEARCH_BACK: u64 = 1 << 20;

/// Where the package signed into the file at `path` ends — just past the signature block
/// after the last end record whose comment is one — or `None` when none is found near the
/// end.
fn signed_end(f: &mut File, len: u64) -> io::Result<Option<u64>> {
    let start = len.saturating_sub(SEARCH_BACK);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.take(len - start).read_to_end(&mut tail)?;
    let record = usize::try_from(EOCD_LEN).unwrap_or(22);
    let comment_len = u16::try_from(SIG_BLOCK_LEN).unwrap_or(u16::MAX).to_le_bytes();
    let found = (0..tail.len().saturating_sub(record + SIG_MAGIC.len())).rev().find(|&i| {
        tail[i..i + 4] == EOCD_MAGIC
            && tail[i + record - 2..i + record] == comment_len
            && tail[i + record..i + record + SIG_MAGIC.len()] == *SIG_MAGIC
    });
    Ok(found.map(|i| start + i as u64 + EOCD_LEN + SIG_BLOCK_LEN as u64))
}

/// Checks the installer's own file before it acts on it: the file must end exactly at its
/// signature block's end (cut short and appended-to copies are named with the byte count)
/// and its archive and manifest must parse. This is the file's shape, not its
/// authenticity: every action then verifies the signature with the root's keys.
pub fn check_own_file(path: &Path) -> Result<(), pkgtool::Error> {
    let damaged = |kind: Integrity| pkgtool::Error::integrity(path, kind);
    let mut f = File::open(path).map_err(pkgtool::Error::io(path))?;
    let len = f.metadata().map_err(pkgtool::Error::io(path))?.len();
    match signed_end(&mut f, len).map_err(pkgtool::Error::io(path))? {
        Some(end) if end > len => {
            return Err(damaged(Integrity::Truncated(format!(
                "this installer is cut short: it ends {} byte(s) before the end of its signature block (an \
                 incomplete copy or download)",
                end - len
            ))));
        }
        Some(end) if end < len => {
            return Err(damaged(Integrity::UnaccountedBytes(format!(
                "{} byte(s) were appended to this installer after its signature block",
                len - end
            ))));
        }
        Some(_) => {}
        None => {
            return Err(damaged(Integrity::Truncated(
                "this installer carries no signed package at its end (its tail is damaged, or this is a bare stub: \
                 `pkgtool build --self-contained` puts a package after it)"
                    .into(),
            )));
        }
    }
    pkgtool::read::read_unverified(path, &Limits::default()).map(|_| ())
}
