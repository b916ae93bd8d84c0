//! The packager's cross-check against what binaries say about themselves (DESIGN.md
//! "Version information inside binaries"): a file whose version string carries a branch
//! tag must agree with the variant's declared branch and baseline — the GDR build put in
//! the LDR folder is a classic release mistake — and a variant that omits `version`
//! takes it from its binaries, which must agree.

use std::path::{Path, PathBuf};

use filever::{BranchTag, TagBranch};
use hotfix_schema::{Branch, RelPath, Version};

use crate::error::{Error, Result};
use crate::spec::SpecVariant;

/// Whether a disagreeing tag stops the build. An enum, not a flag, so the risky choice is
/// visible where it is made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TagCheck {
    /// A file whose tag disagrees with its variant is a build error (the default).
    #[default]
    Enforce,
    /// Disagreements are reported as warnings and the build goes on (`--no-tag-check`).
    WarnOnly,
}

/// What one payload file says about itself.
#[derive(Clone, Debug)]
pub struct FileFacts {
    /// Where the file goes.
    pub path: RelPath,
    /// Where it is now.
    pub source: PathBuf,
    /// Its FileVersion string (PE) or packaging-note fileVersion (ELF).
    pub version_string: Option<String>,
    /// The branch tag in that string.
    pub tag: Option<BranchTag>,
    /// Its own version number: the fixed file version (PE) or the note's version (ELF),
    /// when that is dotted numeric.
    pub version: Option<Version>,
}

impl FileFacts {
    /// Reads what `data` (the content of `source`) says about itself. Files that are not PE
    /// or ELF binaries say nothing.
    pub fn read(path: &RelPath, source: &Path, data: &[u8]) -> FileFacts {
        let mut facts = FileFacts {
            path: path.clone(),
            source: source.to_path_buf(),
            version_string: None,
            tag: None,
            version: None,
        };
        if !(data.starts_with(b"MZ") || data.starts_with(b"\x7fELF")) {
            return facts;
        }
        let info = filever::read_bytes(data);
        facts.version_string = info
            .file_version_string
            .as_ref()
            .map(|s| s.chars().filter(|c| !c.is_control()).take(256).collect::<String>())
            .filter(|s| !s.is_empty());
        facts.tag = info.tag.clone();
        let number = info.fixed.as_ref().map(|f| f.file_version.clone()).or_else(|| {
            info.elf_package_note.as_ref().and_then(|n| n.get("version")).and_then(|v| v.as_str()).map(String::from)
        });
        facts.version = number.and_then(|n| Version::parse(&n).ok());
        facts
    }
}

fn tag_branch(t: TagBranch) -> Branch {
    match t {
        TagBranch::Gdr => Branch::Gdr,
        TagBranch::Ldr => Branch::Ldr,
    }
}

/// Checks a variant's files against their tags and settles its version. Returns the
/// version (declared, or taken from the binaries) and the warnings to print.
pub fn check_variant(
    spec: &Path,
    v: &SpecVariant,
    files: &[FileFacts],
    mode: TagCheck,
) -> Result<(Version, Vec<String>)> {
    let err = |msg: String| Error::Spec { file: spec.to_path_buf(), line: Some(v.line), msg };
    let declared = format!(
        "variant {} {}{}",
        v.component,
        v.baseline,
        v.branch.map(|b| format!(" {}", b.as_str())).unwrap_or_default()
    );
    let mut warnings = Vec::new();
    for f in files {
        let Some(tag) = &f.tag else { continue };
        let mut problems = Vec::new();
        if let Some(branch) = v.branch
            && tag_branch(tag.branch) != branch
        {
            let built = match tag_branch(tag.branch) {
                Branch::Gdr => "a GDR build",
                Branch::Ldr => "an LDR build",
            };
            problems.push(format!("{built} ({}) but the variant is {}", tag.branch_word, branch.as_str()));
        }
        if let Some(b) = &tag.baseline
            && !b.eq_ignore_ascii_case(v.baseline.as_str())
        {
            problems.push(format!("built for baseline {b} but the variant is for {}", v.baseline));
        }
        if problems.is_empty() {
            continue;
        }
        let msg = format!(
            "{}: its version tag ({}) says {}; it does not belong in {declared}",
            f.source.display(),
            tag.raw,
            problems.join(" and ")
        );
        match mode {
            TagCheck::Enforce => return Err(err(format!("{msg} (--no-tag-check overrides)"))),
            TagCheck::WarnOnly => warnings.push(format!("{}:{}: {msg}", spec.display(), v.line)),
        }
    }
    let version = match &v.version {
        Some(version) => version.clone(),
        None => {
            let mut versioned = files.iter().filter_map(|f| f.version.as_ref().map(|ver| (f, ver)));
            let Some((first, common)) = versioned.next() else {
                return Err(err(format!(
                    "{declared} has no version, and no binary in {} carries one; add version = \"…\"",
                    v.dir.display()
                )));
            };
            if let Some((other, theirs)) = versioned.find(|(_, ver)| *ver != common) {
                return Err(err(format!(
                    "{declared} has no version, and its binaries disagree: {} is {common} but {} is {theirs}; add version = \"…\"",
                    first.path, other.path
                )));
            }
            common.clone()
        }
    };
    Ok((version, warnings))
}
