//! The rules a manifest must satisfy beyond its JSON shape (FORMAT.md §4.3): the kind
//! rules of DESIGN.md, one owner per path, every file backed by exactly one blob, and the
//! derived lists matching what the variants say.
//!
//! Writers run these on what they are about to sign; readers run them on what they read.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Branch, Digest, Kind, Limits, Manifest, ManifestError, Name, RelPath};

impl Manifest {
    /// Checks every rule of FORMAT.md §4.3; the first one broken is the error.
    pub fn validate(&self, limits: &Limits) -> Result<(), ManifestError> {
        use ManifestError as E;
        let bad = |msg: String| Err(E::Invalid(msg));

        // 4.3.1 Format version.
        if self.format_version != crate::FORMAT_VERSION {
            return Err(E::UnknownFormatVersion(self.format_version));
        }
        // 4.3.2 Text fields are bounded and printable.
        if self.package.title.is_empty() || self.package.title.len() > 1024 {
            return bad("package.title must be 1 to 1024 bytes".into());
        }
        if self.package.title.chars().any(char::is_control) || self.tool.chars().any(char::is_control) {
            return bad("package.title and tool must not contain control characters".into());
        }
        if self.tool.len() > 256 {
            return bad("tool must be at most 256 bytes".into());
        }
        // 4.3.3 Counts.
        if self.variants.is_empty() {
            return bad("a package has at least one variant".into());
        }
        if self.variants.len() as u64 > limits.max_variants {
            return Err(E::TooMany { what: "variants", limit: limits.max_variants });
        }
        let n_files: u64 = self.variants.iter().map(|v| v.files.len() as u64).sum();
        if n_files > limits.max_files {
            return Err(E::TooMany { what: "files", limit: limits.max_files });
        }
        // Every blob is one entry, plus the manifest.
        if self.blobs.len() as u64 + 1 > limits.max_entries {
            return Err(E::TooMany { what: "blobs", limit: limits.max_entries - 1 });
        }

        // 4.3.4 Kind rules.
        match (self.package.kind, &self.package.baseline) {
            (Kind::Baseline, None) => return bad("a baseline package must declare package.baseline".into()),
            (Kind::Update | Kind::Hotfix, Some(_)) => {
                return bad(format!("package.baseline is only for baseline packages, not {}", self.package.kind));
            }
            _ => {}
        }
        let mut seen: BTreeMap<(&Name, &Name), Vec<Option<Branch>>> = BTreeMap::new();
        for v in &self.variants {
            let what = format!("variant {} {} {}", v.component, v.baseline, branch_text(v.branch));
            match self.package.kind {
                Kind::Baseline => {
                    if v.branch.is_some() {
                        return bad(format!("{what}: variants of a baseline package have no branch"));
                    }
                    if let Some(decl) = &self.package.baseline
                        && v.baseline != decl.name
                    {
                        return bad(format!(
                            "{what}: a baseline package's variants are for its own baseline {}",
                            decl.name
                        ));
                    }
                }
                Kind::Update if v.branch.is_none() => return bad(format!("{what}: update variants need a branch")),
                Kind::Hotfix if v.branch != Some(Branch::Ldr) => {
                    return bad(format!("{what}: a hotfix carries only ldr variants"));
                }
                _ => {}
            }
            let branches = seen.entry((&v.component, &v.baseline)).or_default();
            if branches.contains(&v.branch) {
                return bad(format!("{what}: duplicate variant"));
            }
            branches.push(v.branch);
            if v.files.is_empty() {
                return bad(format!("{what}: a variant has at least one file"));
            }
            let fixes: BTreeSet<&Name> = v.fixes.iter().collect();
            if fixes.len() != v.fixes.len() {
                return bad(format!("{what}: a fix is listed twice"));
            }
            if let Some(f) = v
                .files
                .iter()
                .find(|f| f.version_string.as_ref().is_some_and(|s| s.len() > 256 || s.chars().any(char::is_control)))
            {
                return bad(format!("{what}: {}: version_string must be at most 256 printable bytes", f.path));
            }
            if !v.files.windows(2).all(|w| w[0].path < w[1].path) {
                return bad(format!("{what}: files must be sorted by path without repeats"));
            }
        }
        if self.package.kind == Kind::Update {
            for ((component, baseline), branches) in &seen {
                if branches.len() != 2 {
                    return bad(format!(
                        "update covers {component} at {baseline} with only one branch; an update ships both gdr and ldr"
                    ));
                }
                let of = |b: Branch| {
                    self.variants
                        .iter()
                        .find(|v| &v.component == *component && &v.baseline == *baseline && v.branch == Some(b))
                };
                if let (Some(gdr), Some(ldr)) = (of(Branch::Gdr), of(Branch::Ldr))
                    && let Some(missing) = gdr.fixes.iter().find(|f| !ldr.fixes.contains(f))
                {
                    return bad(format!(
                        "{component} at {baseline}: fix {missing} is in the gdr variant but not in the ldr one (every gdr fix is also in ldr)"
                    ));
                }
            }
        }

        // 4.3.5 One component per path.
        let mut owner: BTreeMap<&RelPath, &Name> = BTreeMap::new();
        for v in &self.variants {
            for f in &v.files {
                if let Some(other) = owner.insert(&f.path, &v.component)
                    && other != &v.component
                {
                    return bad(format!("{} is owned by both {other} and {}", f.path, v.component));
                }
            }
        }

        // 4.3.6 Blobs: unique, sorted by first use, each referenced, each file backed.
        let mut blobs: BTreeMap<&Digest, u64> = BTreeMap::new();
        for b in &self.blobs {
            if b.size > limits.max_blob_bytes {
                return Err(E::TooMany { what: "bytes in one blob", limit: limits.max_blob_bytes });
            }
            if blobs.insert(&b.sha256, b.size).is_some() {
                return bad(format!("blob {} is listed twice", b.sha256));
            }
        }
        let mut referenced: BTreeSet<&Digest> = BTreeSet::new();
        for v in &self.variants {
            for f in &v.files {
                match blobs.get(&f.sha256) {
                    None => return bad(format!("{}: no blob {} in the package", f.path, f.sha256)),
                    Some(size) if *size != f.size => {
                        return bad(format!("{}: size {} but blob {} has size {size}", f.path, f.size, f.sha256));
                    }
                    Some(_) => {}
                }
                referenced.insert(&f.sha256);
            }
        }
        if let Some(b) = self.blobs.iter().find(|b| !referenced.contains(&b.sha256)) {
            return bad(format!("blob {} is not used by any file", b.sha256));
        }

        // 4.3.7 Derived lists.
        let baselines: BTreeSet<&Name> = self.variants.iter().map(|v| &v.baseline).collect();
        if !self.baselines.iter().eq(baselines.iter().copied()) {
            return bad("baselines must list every variant's baseline, sorted, once".into());
        }
        let fixes: BTreeSet<&Name> = self.variants.iter().flat_map(|v| &v.fixes).collect();
        if !self.fixes.iter().eq(fixes.iter().copied()) {
            return bad("fixes must list every variant's fixes, sorted, once".into());
        }
        Ok(())
    }
}

fn branch_text(b: Option<Branch>) -> &'static str {
    b.map_or("(baseline)", Branch::as_str)
}
