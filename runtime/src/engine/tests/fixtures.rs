//! Test fixtures: small, valid manifests built from a few words, and a simulated root that
//! installs and uninstalls through the engine and applies each plan to a simulated disk.

use std::collections::BTreeMap;

use hotfix_schema::{
    BaselineDecl, Blob, Branch, Channel, Digest, Encoding, FileEntry, Kind, Limits, Manifest, Mode, Name, PackageInfo,
    RelPath, Variant, Version,
};

use crate::engine::{
    ActiveFile, ActiveState, Applicability, BranchPolicy, ComponentState, Inputs, InstallOptions, Installed,
    NotApplicableReason, Plan, QfeOverride, active_files, active_state, applicability, transition,
};

pub const PRODUCT: &str = "contoso";

pub fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

pub fn ver(s: &str) -> Version {
    Version::parse(s).unwrap()
}

/// A digest derived from a text (FNV-1a, stretched to 32 bytes): same text, same digest.
pub fn digest(text: &str) -> Digest {
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (i as u64);
        for b in text.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        chunk.copy_from_slice(&h.to_le_bytes());
    }
    Digest(out)
}

/// A variant to put in a test manifest.
#[derive(Clone, Debug)]
pub struct V {
    pub component: String,
    pub baseline: String,
    pub branch: Option<Branch>,
    pub version: String,
    pub fixes: Vec<String>,
    pub restart: bool,
    /// Paths of its files; by default one file, `<component>/<component>.bin`.
    pub paths: Vec<String>,
}

fn variant(c: &str, b: &str, branch: Option<Branch>, version: &str, fixes: &[&str]) -> V {
    V {
        component: c.into(),
        baseline: b.into(),
        branch,
        version: version.into(),
        fixes: fixes.iter().map(|f| f.to_string()).collect(),
        restart: false,
        paths: vec![format!("{c}/{c}.bin")],
    }
}

pub fn gdr(c: &str, b: &str, version: &str, fixes: &[&str]) -> V {
    variant(c, b, Some(Branch::Gdr), version, fixes)
}

pub fn ldr(c: &str, b: &str, version: &str, fixes: &[&str]) -> V {
    variant(c, b, Some(Branch::Ldr), version, fixes)
}

pub fn base(c: &str, b: &str, version: &str, fixes: &[&str]) -> V {
    variant(c, b, None, version, fixes)
}

/// The content of a build: the same component, baseline, branch and version give the same
/// bytes, whichever package ships them.
fn content(v: &V, path: &str) -> (Digest, u64) {
    let text = format!("{path}|{}|{}|{:?}|{}", v.component, v.baseline, v.branch, v.version);
    (digest(&text), 100 + text.len() as u64)
}

/// A manifest that passes `Manifest::validate` with the default limits.
pub fn manifest_for(product: &str, id: &str, kind: Kind, decl: Option<(&str, u32)>, vs: &[V]) -> Manifest {
    let mut blobs: Vec<Blob> = Vec::new();
    let variants: Vec<Variant> = vs
        .iter()
        .map(|v| {
            let mut paths = v.paths.clone();
            paths.sort();
            let files = paths
                .iter()
                .map(|p| {
                    let (sha256, size) = content(v, p);
                    if !blobs.iter().any(|b| b.sha256 == sha256) {
                        blobs.push(Blob {
                            sha256,
                            size,
                            encoding: Encoding::Stored,
                            reference: None,
                            members: Vec::new(),
                        });
                    }
                    FileEntry {
                        path: RelPath::new(p).unwrap(),
                        size,
                        mode: Mode::new(0o644).unwrap(),
                        sha256,
                        version_string: None,
                    }
                })
                .collect();
            Variant {
                component: name(&v.component),
                baseline: name(&v.baseline),
                branch: v.branch,
                version: ver(&v.version),
                fixes: v.fixes.iter().map(|f| name(f)).collect(),
                restart: v.restart,
                files,
            }
        })
        .collect();
    let mut baselines: Vec<Name> = variants.iter().map(|v| v.baseline.clone()).collect();
    baselines.sort();
    baselines.dedup();
    let mut fixes: Vec<Name> = variants.iter().flat_map(|v| v.fixes.clone()).collect();
    fixes.sort();
    fixes.dedup();
    let m = Manifest {
        format_version: hotfix_schema::FORMAT_VERSION,
        package: PackageInfo {
            id: name(id),
            kind,
            product: name(product),
            title: format!("test package {id}"),
            channel: Channel::Release,
            baseline: decl.map(|(n, level)| BaselineDecl { name: name(n), level }),
        },
        tool: "engine tests".into(),
        baselines,
        fixes,
        variants,
        blobs,
    };
    m.validate(&Limits::default()).unwrap();
    m
}

pub fn update(id: &str, vs: &[V]) -> Manifest {
    manifest_for(PRODUCT, id, Kind::Update, None, vs)
}

pub fn hotfix(id: &str, vs: &[V]) -> Manifest {
    manifest_for(PRODUCT, id, Kind::Hotfix, None, vs)
}

/// A baseline package `id` establishing `baseline` at `level`, with one variant per
/// `(component, version, fixes)`.
pub fn baseline_pkg(id: &str, baseline: &str, level: u32, comps: &[(&str, &str, &[&str])]) -> Manifest {
    let vs: Vec<V> = comps.iter().map(|(c, v, f)| base(c, baseline, v, f)).collect();
    manifest_for(PRODUCT, id, Kind::Baseline, Some((baseline, level)), &vs)
}

/// The product's RTM: kernel and net at 1.0, no fixes.
pub fn rtm() -> Manifest {
    baseline_pkg("RTM", "RTM", 0, &[("kernel", "1.0", &[]), ("net", "1.0", &[])])
}

pub fn installed(m: Manifest, qfe: QfeOverride) -> Installed {
    Installed::new(m, InstallOptions { qfe })
}

/// Applies a plan to a disk, checking that what it expects to find is there.
pub fn apply(disk: &mut BTreeMap<RelPath, ActiveFile>, plan: &Plan) {
    for r in &plan.remove {
        let was = disk.remove(&r.path);
        assert_eq!(was.as_ref(), Some(&r.old), "removing {}", r.path);
    }
    for p in &plan.put {
        let was = disk.insert(p.path.clone(), p.file.clone());
        assert_eq!(was.is_some(), p.old.is_some(), "writing {}", p.path);
        if let (Some(was), Some(old)) = (was, &p.old) {
            assert!(was.same_file(old), "writing {}", p.path);
        }
    }
    for p in &plan.relabel {
        let was = disk.insert(p.path.clone(), p.file.clone());
        assert_eq!(was.as_ref(), p.old.as_ref(), "relabelling {}", p.path);
        assert!(p.old.as_ref().is_some_and(|o| o.same_file(&p.file)), "relabelling {}", p.path);
    }
}

/// A root driven only through the engine's public functions.
pub struct Root {
    pub product: Name,
    pub installed: Vec<Installed>,
    pub policy: BranchPolicy,
    /// What a real root would hold: every plan applied so far.
    pub disk: BTreeMap<RelPath, ActiveFile>,
}

impl Root {
    pub fn new() -> Root {
        Root { product: name(PRODUCT), installed: Vec::new(), policy: BranchPolicy::Auto, disk: BTreeMap::new() }
    }

    /// A root with RTM installed.
    pub fn at_rtm() -> Root {
        let mut r = Root::new();
        r.install(rtm());
        r
    }

    pub fn inputs(&self) -> Inputs<'_> {
        Inputs { product: &self.product, installed: &self.installed, policy: self.policy }
    }

    pub fn state(&self) -> ActiveState {
        active_state(&self.inputs()).unwrap()
    }

    pub fn comp(&self, c: &str) -> ComponentState {
        self.state().components.get(&name(c)).cloned().unwrap_or_else(|| panic!("no component {c}"))
    }

    /// Installs if applicable; returns the applicability and, if installed, the plan.
    pub fn try_install(&mut self, m: Manifest, qfe: QfeOverride) -> (Applicability, Option<Plan>) {
        let options = InstallOptions { qfe };
        let answer = applicability(&self.inputs(), &m, &options).unwrap();
        let mut plan = None;
        if answer == Applicability::Applicable {
            let mut next = self.installed.clone();
            next.push(Installed::new(m, options));
            plan = Some(self.change(next, self.policy));
        }
        (answer, plan)
    }

    /// The reason a package is not applicable; panics if it is.
    pub fn refuse(&mut self, m: Manifest, qfe: QfeOverride) -> NotApplicableReason {
        let before = self.state();
        match self.try_install(m, qfe) {
            (Applicability::NotApplicable(r), None) => {
                assert_eq!(self.state(), before, "nothing changes");
                r
            }
            other => panic!("should not be applicable: {other:?}"),
        }
    }

    pub fn install_with(&mut self, m: Manifest, qfe: QfeOverride) -> Plan {
        let id = m.package.id.clone();
        match self.try_install(m, qfe) {
            (Applicability::Applicable, Some(plan)) => plan,
            other => panic!("{id} should be applicable: {other:?}"),
        }
    }

    pub fn install(&mut self, m: Manifest) -> Plan {
        self.install_with(m, QfeOverride::Off)
    }

    pub fn uninstall(&mut self, id: &str) -> Plan {
        let next: Vec<Installed> =
            self.installed.iter().filter(|p| p.manifest.package.id.as_str() != id).cloned().collect();
        assert_eq!(next.len() + 1, self.installed.len(), "{id} is not installed");
        self.change(next, self.policy)
    }

    pub fn set_policy(&mut self, policy: BranchPolicy) -> Plan {
        self.change(self.installed.clone(), policy)
    }

    fn change(&mut self, next: Vec<Installed>, policy: BranchPolicy) -> Plan {
        let after = Inputs { product: &self.product, installed: &next, policy };
        let t = transition(&self.inputs(), &after).unwrap();
        assert_eq!(t.before_files, self.disk, "the disk matches the state before");
        apply(&mut self.disk, &t.plan);
        assert_eq!(self.disk, t.after_files, "the plan leads to the state after");
        assert_eq!(active_files(&t.after).unwrap(), t.after_files);
        self.installed = next;
        self.policy = policy;
        t.plan
    }

    /// The fixes of a component's active variant.
    pub fn fixes(&self, c: &str) -> Vec<String> {
        self.comp(c).chosen.variant.fixes.iter().map(|f| f.to_string()).collect()
    }
}

/// The digest a test variant's file gets, to check which build landed on disk.
pub fn file_digest(v: &V) -> Digest {
    content(v, &v.paths[0]).0
}

/// The digest on the simulated disk at `<component>/<component>.bin`.
pub fn on_disk(root: &Root, c: &str) -> Option<Digest> {
    root.disk.get(&RelPath::new(&format!("{c}/{c}.bin")).unwrap()).map(|f| f.sha256)
}
