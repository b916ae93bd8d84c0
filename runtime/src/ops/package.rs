//! A package file on its own, outside any root's inventory: what it is ([`describe`]) and
//! its verified extraction ([`extract`], the installer's `/extract:DIR`). Both serve a
//! plain package and a self-contained installer alike.

use std::fmt;
use std::path::{Path, PathBuf};

use hotfix_schema::sigblock::key_id_hex;
use hotfix_schema::{Limits, Manifest};
use pkgtool::TrustedKey;
use schemars::JsonSchema;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::progress::{self, Progress};

/// What a package file is.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct PackageView {
    /// The file.
    pub file: PathBuf,
    /// Whether it is a self-contained installer (an executable stub precedes the package).
    pub self_contained: bool,
    /// Package id.
    pub id: String,
    /// Title.
    pub title: String,
    /// `baseline`, `update` or `hotfix`.
    pub kind: String,
    /// The product it services.
    pub product: String,
    /// `release` or `prerelease`.
    pub channel: String,
    /// For a baseline package, the baseline it establishes.
    pub establishes: Option<hotfix_schema::BaselineDecl>,
    /// Baselines it has builds for.
    pub baselines: Vec<String>,
    /// Components it has builds of.
    pub components: Vec<String>,
    /// Every fix it contains.
    pub fixes: Vec<String>,
    /// The signer's key id.
    pub signer_key_id: String,
    /// Whether every byte was checked against a trusted key.
    pub verified: bool,
    /// The trusted key it was verified with (a file name), when verified.
    pub verified_with: Option<String>,
}

impl PackageView {
    /// The view of a manifest read from `file`.
    pub fn new(file: &Path, m: &Manifest, stub: u64, signer: [u8; 8], verified_with: Option<&TrustedKey>) -> Self {
        let mut components: Vec<String> = m.variants.iter().map(|v| v.component.to_string()).collect();
        components.sort();
        components.dedup();
        PackageView {
            file: file.to_path_buf(),
            self_contained: stub > 0,
            id: m.package.id.to_string(),
            title: m.package.title.clone(),
            kind: m.package.kind.to_string(),
            product: m.package.product.to_string(),
            channel: m.package.channel.to_string(),
            establishes: m.package.baseline.clone(),
            baselines: m.baselines.iter().map(ToString::to_string).collect(),
            components,
            fixes: m.fixes.iter().map(ToString::to_string).collect(),
            signer_key_id: key_id_hex(&signer),
            verified: verified_with.is_some(),
            verified_with: verified_with.map(|k| k.source.display().to_string()),
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}

impl fmt::Display for PackageView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.self_contained { "a self-contained installer for" } else { "package" };
        writeln!(f, "{} is {what} {} ({}): {}", self.file.display(), self.id, self.kind, self.title)?;
        let establishes = self
            .establishes
            .as_ref()
            .map(|b| format!("; establishes {} (level {})", b.name, b.level))
            .unwrap_or_default();
        writeln!(
            f,
            "  product {}, channel {}{establishes}; baselines {}; components {}",
            self.product,
            self.channel,
            list(&self.baselines),
            list(&self.components)
        )?;
        writeln!(f, "  fixes: {}", list(&self.fixes))?;
        match &self.verified_with {
            Some(k) => writeln!(f, "  signed by key {}: every byte verified against {k}", self.signer_key_id),
            None => writeln!(
                f,
                "  signed by key {}: NOT verified (no trusted key: give --root DIR of a root that trusts the \
                 publisher, or --trust KEY.pub)",
                self.signer_key_id
            ),
        }
    }
}

/// Loads keys given with `--trust`.
pub fn load_keys(paths: &[PathBuf]) -> Result<Vec<TrustedKey>> {
    paths
        .iter()
        .map(|p| TrustedKey::load(p).map_err(|source| Error::Package { source: Box::new(source), hint: String::new() }))
        .collect()
}

fn package_error(source: pkgtool::Error, what: &str) -> Error {
    let untrusted = matches!(&source, pkgtool::Error::Integrity { kind: pkgtool::Integrity::UntrustedKey { .. }, .. });
    let hint = if untrusted {
        format!(". Nothing was {what}. If the signer is genuine, pass its public key with --trust KEY.pub")
    } else if source.exit_code() == 6 {
        format!(". Nothing was {what}; get a fresh copy of the package from its publisher")
    } else {
        format!(". Nothing was {what}")
    };
    Error::Package { source: Box::new(source), hint }
}

/// Describes the package at `path`: verified when `keys` is not empty, otherwise read
/// without checking its signature (and said so).
pub fn describe(path: &Path, keys: &[TrustedKey], progress: &mut dyn Progress) -> Result<PackageView> {
    let limits = Limits::default();
    if keys.is_empty() {
        let u = pkgtool::read::read_unverified(path, &limits).map_err(|e| package_error(e, "read"))?;
        return Ok(PackageView::new(path, &u.manifest, u.archive.prefix_len, u.archive.sig.key_id, None));
    }
    let v = pkgtool::read::verify(path, keys, &limits, &mut |done, total| {
        progress.update(progress::VERIFY, done, total);
    });
    progress.clear();
    let v = v.map_err(|e| package_error(e, "read"))?;
    Ok(PackageView::new(path, &v.manifest, v.archive.prefix_len, v.signer.id, Some(&v.signer)))
}

/// What an extraction wrote.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct ExtractView {
    /// The package.
    pub package: PackageView,
    /// The target directory.
    pub dir: PathBuf,
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Variants extracted.
    pub variants: usize,
}

impl fmt::Display for ExtractView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: verified (key {}); extracted {} files ({} bytes) of {} variants of {} into {} \
             (layout <baseline>/<branch>/<component>/…)",
            self.package.file.display(),
            self.package.signer_key_id,
            self.files,
            self.bytes,
            self.variants,
            self.package.id,
            self.dir.display()
        )
    }
}

/// Authenticates the package at `path` against `keys`, then decodes it and extracts every
/// variant into `dir` (`DIR/<baseline>/<branch>/<component>/…`, as `pkgtool extract`):
/// nothing is written before every byte checked out against the signature.
pub fn extract(path: &Path, dir: &Path, keys: &[TrustedKey], progress: &mut dyn Progress) -> Result<ExtractView> {
    // The authentication pass shows as verifying; once it is done, the decode pass that
    // writes the files as extracting.
    let mut authenticated = false;
    let r = pkgtool::extract::extract(path, dir, keys, &Limits::default(), &mut |done, total| {
        authenticated |= done >= total;
        if authenticated {
            progress.update(progress::EXTRACT, 0, 0);
        } else {
            progress.update(progress::VERIFY, done, total);
        }
    });
    progress.clear();
    let r = r.map_err(|e| package_error(e, "extracted"))?;
    let v = &r.verified;
    Ok(ExtractView {
        package: PackageView::new(path, &v.manifest, v.archive.prefix_len, v.signer.id, Some(&v.signer)),
        dir: dir.to_path_buf(),
        files: r.files,
        bytes: r.bytes,
        variants: v.manifest.variants.len(),
    })
}
