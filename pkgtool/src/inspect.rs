//! `pkgtool inspect`: what a package is — kind, product, baselines, components, and per
//! variant the branch, version, fixes and sizes — as text or as a stable JSON shape.

use std::fmt::Write as _;

use hotfix_schema::sigblock::key_id_hex;
use hotfix_schema::{Manifest, Variant};
use schemars::JsonSchema;
use serde::Serialize;

use crate::zipfmt::Archive;

/// How far a package was checked before it was described.
#[derive(Clone, Debug, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verification {
    /// Every byte was checked against the signature of a trusted key.
    Verified,
    /// Only the structure and manifest were read; no key was given.
    NotVerified,
}

/// The JSON shape of `pkgtool inspect --json` (stable: fields are only ever added).
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct Inspection<'a> {
    /// Verified or not.
    pub verification: Verification,
    /// The signer's key id, from the signature block.
    pub signer_key_id: String,
    /// Size of the package file.
    pub file_size: u64,
    /// Bytes before the archive (an installer stub), 0 for a plain package.
    pub stub_size: u64,
    /// Components, sorted.
    pub components: Vec<&'a str>,
    /// Per-variant sizes, in manifest order.
    pub variant_sizes: Vec<VariantSize>,
    /// The manifest itself.
    pub manifest: &'a Manifest,
}

/// Sizes of one variant.
#[derive(Clone, Debug, Serialize, JsonSchema)]
pub struct VariantSize {
    /// Number of files.
    pub files: usize,
    /// Sum of the files' sizes.
    pub bytes: u64,
}

/// Describes a package.
pub fn inspection<'a>(manifest: &'a Manifest, archive: &Archive, verification: Verification) -> Inspection<'a> {
    let mut components: Vec<&str> = manifest.variants.iter().map(|v| v.component.as_str()).collect();
    components.sort_unstable();
    components.dedup();
    Inspection {
        verification,
        signer_key_id: key_id_hex(&archive.sig.key_id),
        file_size: archive.len,
        stub_size: archive.prefix_len,
        components,
        variant_sizes: manifest
            .variants
            .iter()
            .map(|v| VariantSize { files: v.files.len(), bytes: bytes(v) })
            .collect(),
        manifest,
    }
}

fn bytes(v: &Variant) -> u64 {
    v.files.iter().map(|f| f.size).sum()
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "(none)".into();
    }
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// The human-readable description.
pub fn render_text(i: &Inspection<'_>) -> String {
    let m = i.manifest;
    let p = &m.package;
    let mut s = String::new();
    let _ = writeln!(s, "package    {} ({}, {})", p.id, p.kind, p.channel);
    let _ = writeln!(s, "title      {}", p.title);
    let _ = writeln!(s, "product    {}", p.product);
    if let Some(b) = &p.baseline {
        let _ = writeln!(s, "establishes baseline {} (level {})", b.name, b.level);
    }
    let _ = writeln!(s, "baselines  {}", join(&m.baselines));
    let _ = writeln!(s, "components {}", join(&i.components));
    let _ = writeln!(s, "fixes      {}", join(&m.fixes));
    let verified = match i.verification {
        Verification::Verified => "verified",
        Verification::NotVerified => "NOT verified (give --trust KEY.pub to verify)",
    };
    let _ = writeln!(s, "signer     key {} ({verified})", i.signer_key_id);
    let stored: u64 = m.blobs.iter().map(|b| b.size).sum();
    let _ = writeln!(
        s,
        "size       {} bytes{}; {} distinct contents in {} blobs ({} packs), {} bytes decoded; built by {}",
        i.file_size,
        if i.stub_size > 0 { format!(" (installer stub {} bytes)", i.stub_size) } else { String::new() },
        m.content_index().len(),
        m.blobs.len(),
        m.blobs.iter().filter(|b| b.is_pack()).count(),
        stored,
        m.tool
    );
    let _ = writeln!(s, "variants");
    for (v, size) in m.variants.iter().zip(&i.variant_sizes) {
        let _ = writeln!(
            s,
            "  {:<16} {:<6} {:<4} {:<18} {:>4} files {:>12} bytes{}  fixes: {}",
            v.component.as_str(),
            v.baseline.as_str(),
            v.branch.map_or("base", |b| b.as_str()),
            v.version.to_string(),
            size.files,
            size.bytes,
            if v.restart { "  restart" } else { "" },
            join(&v.fixes)
        );
        for f in v.files.iter().filter(|f| f.version_string.is_some()) {
            let _ = writeln!(s, "      {}  {}", f.path, f.version_string.as_deref().unwrap_or_default());
        }
    }
    s
}
