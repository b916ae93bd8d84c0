//! The rules a manifest must satisfy beyond its JSON shape (FORMAT.md §4.3): the kind
//! rules of DESIGN.md, one owner per path, every file backed by exactly one blob, and the
//! derived lists matching what the variants say.
//!
//! Writers run these on what they are about to sign; readers run them on what they read.

use std::collections::{BTreeMap, BTreeSet};

use crate::{Branch, Digest, Kind, Limits, Manifest, ManifestError, Name, RelPath, Variant};

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
            let fixes: BTreeSet<String> = v.fixes.iter().map(|f| f.as_str().to_ascii_lowercase()).collect();
            if fixes.len() != v.fixes.len() {
                return bad(format!("{what}: a fix is listed twice (fix ids compare without regard to case)"));
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

        // 4.3.9 No file is a directory of another file that can be in the same root.
        check_file_and_directory(&self.variants)?;

        // 4.3.6 Contents: unique; packs well-formed; each content used, each file backed.
        let mut contents: BTreeMap<&Digest, (u64, usize)> = BTreeMap::new();
        let mut entries: BTreeSet<&Digest> = BTreeSet::new();
        for (i, b) in self.blobs.iter().enumerate() {
            if b.size > limits.max_blob_bytes {
                return Err(E::TooMany { what: "bytes in one blob", limit: limits.max_blob_bytes });
            }
            if !entries.insert(&b.sha256) {
                return bad(format!("blob {} is listed twice", b.sha256));
            }
            if !b.is_pack() {
                if contents.insert(&b.sha256, (b.size, i)).is_some() {
                    return bad(format!("content {} is listed twice", b.sha256));
                }
                continue;
            }
            if b.members.len() < 2 {
                return bad(format!("pack {}: a pack has at least two members", b.sha256));
            }
            if b.size > limits.max_pack_bytes {
                return Err(E::TooMany { what: "bytes in one pack", limit: limits.max_pack_bytes });
            }
            let sum = b.members.iter().try_fold(0u64, |acc, m| acc.checked_add(m.size));
            if sum != Some(b.size) {
                return bad(format!("pack {}: its members' sizes do not add up to its size {}", b.sha256, b.size));
            }
            for m in &b.members {
                if contents.insert(&m.sha256, (m.size, i)).is_some() {
                    return bad(format!("content {} is listed twice", m.sha256));
                }
            }
        }
        if let Some(p) = self.blobs.iter().find(|b| b.is_pack() && contents.contains_key(&b.sha256)) {
            return bad(format!("pack {} has the hash of a content", p.sha256));
        }
        // What a delta may reference: every content, and every pack as a whole.
        let mut referable = contents.clone();
        for (i, b) in self.blobs.iter().enumerate().filter(|(_, b)| b.is_pack()) {
            referable.insert(&b.sha256, (b.size, i));
        }
        let mut used: BTreeSet<&Digest> = BTreeSet::new();
        for v in &self.variants {
            for f in &v.files {
                match contents.get(&f.sha256) {
                    None => return bad(format!("{}: no blob {} in the package", f.path, f.sha256)),
                    Some((size, _)) if *size != f.size => {
                        return bad(format!("{}: size {} but blob {} has size {size}", f.path, f.size, f.sha256));
                    }
                    Some(_) => {}
                }
                used.insert(&f.sha256);
            }
        }
        if let Some(d) = contents.keys().find(|d| !used.contains(*d)) {
            return bad(format!("blob {d} is not used by any file"));
        }

        // 4.3.8 Delta references: earlier contents, bounded chains, bounded windows and
        // bounded memory for a streaming reader.
        let mut depth_of: Vec<u32> = Vec::with_capacity(self.blobs.len());
        let mut last_use: BTreeMap<&Digest, usize> = BTreeMap::new();
        for (i, b) in self.blobs.iter().enumerate() {
            let depth = match (b.encoding, &b.reference) {
                (e, Some(r)) if e.is_delta() => {
                    let Some(&(ref_size, at)) = referable.get(r).filter(|(_, at)| *at < i) else {
                        return bad(format!("blob {}: its reference {r} is not an earlier blob", b.sha256));
                    };
                    let window = 1u64 << limits.max_zstd_window_log.min(62);
                    if b.size.saturating_add(ref_size) > window {
                        return bad(format!("blob {}: it and its reference exceed the {window}-byte window", b.sha256));
                    }
                    let ref_depth = depth_of.get(at).copied().unwrap_or(0);
                    if ref_depth + 1 > limits.max_delta_depth {
                        return Err(E::TooMany {
                            what: "delta references in a chain",
                            limit: limits.max_delta_depth.into(),
                        });
                    }
                    last_use.insert(r, i);
                    ref_depth + 1
                }
                (e, None) if e.is_delta() => return bad(format!("blob {}: a delta needs a reference", b.sha256)),
                (_, Some(_)) => return bad(format!("blob {}: only delta blobs have a reference", b.sha256)),
                (_, None) => 0,
            };
            depth_of.push(depth);
        }
        let mut live = 0u64;
        for (i, b) in self.blobs.iter().enumerate() {
            let whole = b.is_pack().then_some((b.sha256, 0, b.size));
            for (d, _, size) in b.contents().into_iter().chain(whole) {
                if last_use.get(&d).is_some_and(|&last| last > i) {
                    live += size;
                }
            }
            if live > limits.max_live_reference_bytes {
                return Err(E::TooMany {
                    what: "bytes of live delta references",
                    limit: limits.max_live_reference_bytes,
                });
            }
            for (r, _) in last_use.iter().filter(|(_, last)| **last == i) {
                if let Some(&(size, _)) = referable.get(*r) {
                    live = live.saturating_sub(size);
                }
            }
        }

        // 4.2 A fix is spelled one way in a manifest: fix ids compare without regard to case,
        // so two spellings would be one fix shown two ways.
        let mut spelling: BTreeMap<String, &Name> = BTreeMap::new();
        for f in self.variants.iter().flat_map(|v| &v.fixes) {
            let first = *spelling.entry(f.as_str().to_ascii_lowercase()).or_insert(f);
            if first != f {
                return bad(format!(
                    "fix {first} is also spelled {f}; fix ids compare without regard to case, so a manifest spells each one way"
                ));
            }
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

/// Rule 9: within one baseline, no path is a file of one variant and an ancestor
/// directory of a file of the same variant or of a variant of another component. Variants
/// of one component (GDR and LDR, or builds for other baselines) are never active in one
/// root together, so they may disagree: a build that turns a file into a directory is a
/// change the runtime applies. Runs after rule 5, so every path has one component.
fn check_file_and_directory(variants: &[Variant]) -> Result<(), ManifestError> {
    use std::collections::HashMap;
    // Per baseline: every file path, with its component.
    let mut at: HashMap<&Name, HashMap<&str, &Name>> = HashMap::new();
    for v in variants {
        let paths = at.entry(&v.baseline).or_default();
        for f in &v.files {
            paths.insert(f.path.as_str(), &v.component);
        }
    }
    for v in variants {
        let Some(paths) = at.get(&v.baseline) else { continue };
        for f in &v.files {
            let p = f.path.as_str();
            for (i, _) in p.match_indices('/') {
                let dir = &p[..i];
                let own = v.files.binary_search_by(|g| g.path.as_str().cmp(dir)).is_ok();
                let other = paths.get(dir).filter(|c| **c != &v.component);
                let why = match (own, other) {
                    (true, _) => {
                        format!("both are in variant {} {} {}", v.component, v.baseline, branch_text(v.branch))
                    }
                    (false, Some(c)) => format!(
                        "{dir} is in component {c} and {p} in component {}, both for baseline {}",
                        v.component, v.baseline
                    ),
                    (false, None) => continue,
                };
                return Err(ManifestError::FileAndDirectory { file: dir.to_string(), below: p.to_string(), why });
            }
        }
    }
    Ok(())
}

fn branch_text(b: Option<Branch>) -> &'static str {
    b.map_or("(baseline)", Branch::as_str)
}

#[cfg(test)]
mod tests {
    use crate::{Blob, Digest, Encoding, FileEntry, Kind, Limits, Manifest, ManifestError, Mode, Name, PackageInfo};
    use crate::{Channel, RelPath, Variant, Version};

    fn d(n: u8) -> Digest {
        Digest([n; 32])
    }

    /// A hotfix with one variant whose files are blobs 1..=sizes.len() (in that order).
    fn manifest(sizes: &[u64], blobs: Vec<Blob>) -> Manifest {
        let name = |s: &str| Name::new(s).unwrap();
        let files = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| FileEntry {
                path: RelPath::new(&format!("f{i}")).unwrap(),
                size,
                mode: Mode::new(0o644).unwrap(),
                sha256: d(i as u8 + 1),
                version_string: None,
            })
            .collect();
        Manifest {
            format_version: 1,
            package: PackageInfo {
                id: name("KB1"),
                kind: Kind::Hotfix,
                product: name("p"),
                title: "t".into(),
                channel: Channel::Release,
                baseline: None,
            },
            tool: "test".into(),
            baselines: vec![name("RTM")],
            fixes: vec![],
            variants: vec![Variant {
                component: name("c"),
                baseline: name("RTM"),
                branch: Some(crate::Branch::Ldr),
                version: Version::parse("1").unwrap(),
                fixes: vec![],
                restart: false,
                files,
            }],
            blobs,
        }
    }

    fn blob(n: u8, size: u64, reference: Option<u8>) -> Blob {
        let encoding = if reference.is_some() { Encoding::ZstdDelta } else { Encoding::Zstd };
        Blob { sha256: d(n), size, encoding, reference: reference.map(d), members: Vec::new() }
    }

    fn pack(n: u8, members: &[(u8, u64)]) -> Blob {
        Blob {
            sha256: d(n),
            size: members.iter().map(|m| m.1).sum(),
            encoding: Encoding::Lzma,
            reference: None,
            members: members.iter().map(|&(m, size)| crate::Member { sha256: d(m), size }).collect(),
        }
    }

    fn invalid_because(m: &Manifest, why: &str) -> bool {
        matches!(m.validate(&Limits::default()), Err(ManifestError::Invalid(e)) if e.contains(why))
    }

    #[test]
    fn a_fix_listed_twice_in_different_case_is_invalid() {
        let mut m = manifest(&[10], vec![blob(1, 10, None)]);
        m.variants[0].fixes = vec![Name::new("KB3").unwrap(), Name::new("kb3").unwrap()];
        m.fixes = m.variants[0].fixes.clone();
        assert!(invalid_because(&m, "listed twice"));
    }

    #[test]
    fn a_fix_spelled_two_ways_across_variants_is_invalid() {
        let mut m = manifest(&[10], vec![blob(1, 10, None)]);
        let mut other = m.variants[0].clone();
        other.component = Name::new("d").unwrap();
        other.files[0].path = RelPath::new("g0").unwrap();
        m.variants[0].fixes = vec![Name::new("KB3").unwrap()];
        other.fixes = vec![Name::new("kb3").unwrap()];
        m.variants.push(other);
        m.fixes = vec![Name::new("KB3").unwrap(), Name::new("kb3").unwrap()];
        assert!(invalid_because(&m, "also spelled kb3"));
        // One spelling is valid.
        m.variants[1].fixes = vec![Name::new("KB3").unwrap()];
        m.fixes = vec![Name::new("KB3").unwrap()];
        assert_eq!(m.validate(&Limits::default()), Ok(()));
    }

    #[test]
    fn files_backed_by_pack_members_and_a_delta_against_a_member_are_valid() {
        let m = manifest(&[10, 20, 10], vec![pack(100, &[(1, 10), (2, 20)]), blob(3, 10, Some(1))]);
        assert_eq!(m.validate(&Limits::default()), Ok(()));
    }

    #[test]
    fn a_pack_whose_member_sizes_do_not_add_up_is_invalid() {
        let mut p = pack(100, &[(1, 10), (2, 20)]);
        p.size = 31;
        assert!(invalid_because(&manifest(&[10, 20], vec![p]), "add up"));
    }

    #[test]
    fn a_pack_of_one_member_is_invalid() {
        assert!(invalid_because(&manifest(&[10], vec![pack(100, &[(1, 10)])]), "at least two members"));
    }

    #[test]
    fn a_content_both_packed_and_stored_alone_is_invalid() {
        let m = manifest(&[10, 20], vec![pack(100, &[(1, 10), (2, 20)]), blob(1, 10, None)]);
        assert!(invalid_because(&m, "listed twice"));
    }

    #[test]
    fn a_pack_delta_encoded_against_an_earlier_pack_is_valid() {
        let mut later = pack(101, &[(3, 10), (4, 20)]);
        later.encoding = Encoding::ZstdDelta;
        later.reference = Some(d(100));
        let m = manifest(&[10, 20, 10, 20], vec![pack(100, &[(1, 10), (2, 20)]), later.clone()]);
        assert_eq!(m.validate(&Limits::default()), Ok(()));
        // Not against a later one.
        let m = manifest(&[10, 20, 10, 20], vec![later, pack(100, &[(1, 10), (2, 20)])]);
        assert!(invalid_because(&m, "not an earlier blob"));
    }

    #[test]
    fn a_pack_member_no_file_uses_is_invalid() {
        let m = manifest(&[10], vec![pack(100, &[(1, 10), (9, 20)])]);
        assert!(invalid_because(&m, "not used by any file"));
    }

    #[test]
    fn a_pack_over_the_pack_limit_is_refused() {
        let limits = Limits { max_pack_bytes: 16, ..Limits::default() };
        let m = manifest(&[10, 20], vec![pack(100, &[(1, 10), (2, 20)])]);
        assert!(matches!(m.validate(&limits), Err(ManifestError::TooMany { what, .. }) if what.contains("pack")));
    }

    #[test]
    fn a_delta_chain_within_the_limits_is_valid() {
        let m = manifest(&[10, 10, 10], vec![blob(1, 10, None), blob(2, 10, Some(1)), blob(3, 10, Some(2))]);
        assert_eq!(m.validate(&Limits::default()), Ok(()));
    }

    #[test]
    fn a_reference_to_a_later_blob_is_invalid() {
        let m = manifest(&[10, 10], vec![blob(1, 10, Some(2)), blob(2, 10, None)]);
        assert!(
            matches!(m.validate(&Limits::default()), Err(ManifestError::Invalid(e)) if e.contains("not an earlier blob"))
        );
    }

    #[test]
    fn a_chain_longer_than_the_limit_is_refused() {
        let limits = Limits { max_delta_depth: 2, ..Limits::default() };
        let m = manifest(
            &[1, 1, 1, 1],
            vec![blob(1, 1, None), blob(2, 1, Some(1)), blob(3, 1, Some(2)), blob(4, 1, Some(3))],
        );
        assert!(matches!(m.validate(&limits), Err(ManifestError::TooMany { .. })));
    }

    #[test]
    fn a_delta_and_reference_over_the_window_are_refused() {
        let limits = Limits { max_zstd_window_log: 4, ..Limits::default() };
        let m = manifest(&[10, 10], vec![blob(1, 10, None), blob(2, 10, Some(1))]);
        assert!(matches!(m.validate(&limits), Err(ManifestError::Invalid(e)) if e.contains("window")));
    }

    #[test]
    fn references_held_too_long_exceed_the_live_memory_limit() {
        // A chain holds at most two contents at once (the reference, and the blob being
        // decoded that a later blob needs): 20 bytes.
        let limits = Limits { max_live_reference_bytes: 25, ..Limits::default() };
        let chain = manifest(&[10, 10, 10], vec![blob(1, 10, None), blob(2, 10, Some(1)), blob(3, 10, Some(2))]);
        assert_eq!(chain.validate(&limits), Ok(()));
        // Three plain blobs each referenced three blobs later: 30 bytes held after the third.
        let held = manifest(
            &[10, 10, 10, 10, 10, 10],
            vec![
                blob(1, 10, None),
                blob(2, 10, None),
                blob(3, 10, None),
                blob(4, 10, Some(1)),
                blob(5, 10, Some(2)),
                blob(6, 10, Some(3)),
            ],
        );
        assert!(matches!(held.validate(&limits), Err(ManifestError::TooMany { what, .. }) if what.contains("live")));
    }

    /// `manifest` with its files at `paths` (sorted by the caller).
    fn with_paths(paths: &[&str]) -> Manifest {
        let sizes = vec![1; paths.len()];
        let blobs = (1..=paths.len()).map(|n| blob(n as u8, 1, None)).collect();
        let mut m = manifest(&sizes, blobs);
        for (f, p) in m.variants[0].files.iter_mut().zip(paths) {
            f.path = RelPath::new(p).unwrap();
        }
        m
    }

    fn file_and_directory(m: &Manifest) -> Option<(String, String)> {
        match m.validate(&Limits::default()) {
            Err(ManifestError::FileAndDirectory { file, below, .. }) => Some((file, below)),
            _ => None,
        }
    }

    #[test]
    fn a_variant_with_a_file_and_a_file_below_it_is_refused() {
        // `bin/x-y` sorts between `bin/x` and `bin/x/y`: the check is not only of neighbours.
        let m = with_paths(&["bin/x", "bin/x-y", "bin/x/y"]);
        assert_eq!(file_and_directory(&m), Some(("bin/x".into(), "bin/x/y".into())));
        let deep = with_paths(&["a", "a/b/c/d"]);
        assert_eq!(file_and_directory(&deep), Some(("a".into(), "a/b/c/d".into())));
        assert_eq!(with_paths(&["bin/x-y", "bin/x.d/y", "bin/xy"]).validate(&Limits::default()), Ok(()));
    }

    #[test]
    fn components_of_one_baseline_with_a_file_and_a_file_below_it_are_refused() {
        let mut m = with_paths(&["bin/x", "bin/x/y"]);
        let mut second = m.variants[0].clone();
        second.component = Name::new("d").unwrap();
        second.files = m.variants[0].files.split_off(1);
        m.variants.push(second.clone());
        assert_eq!(file_and_directory(&m), Some(("bin/x".into(), "bin/x/y".into())));
        // The same two components for different baselines never share a root.
        second.baseline = Name::new("SP1").unwrap();
        m.variants[1] = second;
        m.baselines.push(Name::new("SP1").unwrap());
        assert_eq!(m.validate(&Limits::default()), Ok(()));
    }

    #[test]
    fn gdr_and_ldr_of_one_component_may_turn_a_file_into_a_directory() {
        let mut m = with_paths(&["bin/x", "bin/x/y"]);
        m.package.kind = Kind::Update;
        let mut ldr = m.variants[0].clone();
        ldr.files = m.variants[0].files.split_off(1);
        m.variants[0].branch = Some(crate::Branch::Gdr);
        m.variants.push(ldr);
        assert_eq!(m.validate(&Limits::default()), Ok(()));
    }
}
