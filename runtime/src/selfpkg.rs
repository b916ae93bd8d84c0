//! The self-contained installer: a `hotfix` binary followed by a package (FORMAT.md §1,
//! §3.2). The binary recognises that it carries a package when its own executable file
//! ends like one — with a zip end-of-central-directory record whose comment is a signature
//! block — which a plain `hotfix` binary never does. Recognising is not trusting: every
//! action of the installer authenticates the whole file, stub included, before it decodes
//! anything in it (FORMAT.md §8).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use hotfix_schema::sigblock::{SIG_BLOCK_LEN, SIG_MAGIC};

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
