//! `pkgtool`: the packager's command line. Parses flags, calls the library, prints, and
//! maps every error to the documented exit code in one place (`main`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hotfix_schema::Limits;
use hotfix_schema::sigblock::key_id_hex;
use pkgtool::inspect::{self, Verification};
use pkgtool::tagcheck::TagCheck;
use pkgtool::{Error, TrustedKey, build, extract, keys, read};

/// Builds, signs, verifies, inspects and extracts hotfix packages.
#[derive(Parser)]
#[command(name = "pkgtool", version, about, long_about = None)]
struct Cli {
    /// Print nothing but errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Make a signing key: NAME.key (secret, PKCS#8 PEM, mode 0600) and NAME.pub.
    Keygen {
        /// Path and base name of the two files.
        name: PathBuf,
    },
    /// Build a signed package from a spec.
    Build {
        /// The package spec (TOML).
        spec: PathBuf,
        /// Secret key to sign with (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Where to write the package.
        #[arg(short, long)]
        out: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Build even when a binary's branch tag disagrees with its variant (warns instead).
        #[arg(long)]
        no_tag_check: bool,
    },
    /// Check every byte of a package: signature, manifest, every blob.
    Verify {
        /// The package.
        pkg: PathBuf,
        /// A trusted public key (SPKI PEM); give several to trust several.
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Describe a package: kind, baselines, variants, fixes, sizes, signer.
    Inspect {
        /// The package.
        pkg: PathBuf,
        /// Verify against these keys first (otherwise the output says "not verified").
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
        /// Print the description as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Verify a package, then write every variant to DIR/<baseline>/<branch>/<component>/.
    Extract {
        /// The package.
        pkg: PathBuf,
        /// Target directory; must not exist or be empty.
        dir: PathBuf,
        /// A trusted public key (SPKI PEM).
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
    },
    /// Show the version information and branch tag that PE and ELF binaries carry.
    Filever {
        /// The binaries.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pkgtool: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn load_trust(paths: &[PathBuf]) -> Result<Vec<TrustedKey>, Error> {
    paths.iter().map(|p| TrustedKey::load(p)).collect()
}

fn say(quiet: bool, text: &str) {
    if !quiet {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
    }
}

fn progress_printer(quiet: bool) -> impl FnMut(u64, u64) {
    let show = !quiet && std::io::stderr().is_terminal();
    let mut last = 0u64;
    move |done, total| {
        if show && total > 0 {
            let pct = done * 100 / total;
            if pct != last {
                last = pct;
                eprint!("\rverifying {pct:>3}%");
                if done == total {
                    eprintln!();
                }
            }
        }
    }
}

fn json_line(value: &impl serde::Serialize) -> String {
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

fn run(cli: &Cli) -> Result<(), Error> {
    let limits = Limits::default();
    let quiet = cli.quiet;
    match &cli.cmd {
        Cmd::Keygen { name } => {
            let key = keys::generate(name)?;
            say(
                quiet,
                &format!("wrote {0}.key (secret, mode 0600) and {0}.pub\nkey id {1}\n", name.display(), key.id_hex()),
            );
        }
        Cmd::Build { spec, key, out, json, no_tag_check } => {
            let secret = keys::load_secret(key)?;
            let tag_check = if *no_tag_check { TagCheck::WarnOnly } else { TagCheck::Enforce };
            let opts = build::BuildOptions { source_date_epoch: source_date_epoch(), tag_check, ..Default::default() };
            let r = build::build(spec, &secret, out, &opts)?;
            for w in &r.warnings {
                eprintln!("pkgtool: warning: {w}");
            }
            if *json {
                say(
                    quiet,
                    &json_line(&serde_json::json!({
                        "package": r.out, "size": r.size, "key_id": key_id_hex(&r.key_id),
                        "id": r.manifest.package.id, "kind": r.manifest.package.kind,
                        "variants": r.manifest.variants.len(), "blobs": r.manifest.blobs.len(),
                    })),
                );
            } else {
                say(
                    quiet,
                    &format!(
                        "built {} ({}, {} variants, {} distinct contents, {} bytes), signed by key {}\n",
                        r.out.display(),
                        r.manifest.package.id,
                        r.manifest.variants.len(),
                        r.manifest.blobs.len(),
                        r.size,
                        key_id_hex(&r.key_id)
                    ),
                );
            }
        }
        Cmd::Verify { pkg, trust, json } => {
            let keys = load_trust(trust)?;
            let v = read::verify(pkg, &keys, &limits, &mut progress_printer(quiet))?;
            let m = &v.manifest;
            if *json {
                say(
                    quiet,
                    &json_line(&serde_json::json!({
                        "package": pkg, "verified": true, "id": m.package.id, "kind": m.package.kind,
                        "signer_key_id": v.signer.id_hex(), "signer_key_file": v.signer.source,
                        "variants": m.variants.len(), "blobs": m.blobs.len(), "file_size": v.archive.len,
                    })),
                );
            } else {
                say(
                    quiet,
                    &format!(
                        "{}: OK — {} ({}) signed by key {} ({}); every byte, the manifest and {} blobs checked\n",
                        pkg.display(),
                        m.package.id,
                        m.package.kind,
                        v.signer.id_hex(),
                        v.signer.source.display(),
                        m.blobs.len()
                    ),
                );
            }
        }
        Cmd::Inspect { pkg, trust, json } => {
            let (manifest, archive, verification) = if trust.is_empty() {
                let u = read::read_unverified(pkg, &limits)?;
                (u.manifest, u.archive, Verification::NotVerified)
            } else {
                let keys = load_trust(trust)?;
                let v = read::verify(pkg, &keys, &limits, &mut progress_printer(quiet))?;
                (v.manifest, v.archive, Verification::Verified)
            };
            let i = inspect::inspection(&manifest, &archive, verification);
            say(quiet, &if *json { json_line(&i) } else { inspect::render_text(&i) });
        }
        Cmd::Extract { pkg, dir, trust } => {
            let keys = load_trust(trust)?;
            let r = extract::extract(pkg, dir, &keys, &limits, &mut progress_printer(quiet))?;
            say(
                quiet,
                &format!(
                    "{}: verified; extracted {} files ({} bytes) of {} variants into {}\n",
                    pkg.display(),
                    r.files,
                    r.bytes,
                    r.verified.manifest.variants.len(),
                    display_dir(dir)
                ),
            );
        }
        Cmd::Filever { files, json } => return filever_cmd(files, *json, quiet),
    }
    Ok(())
}

/// `pkgtool filever`: every readable file gets a block (or a JSON object); a file that
/// cannot be read is an error after the others are printed.
fn filever_cmd(files: &[PathBuf], json: bool, quiet: bool) -> Result<(), Error> {
    // Every unreadable file is reported; the last one is returned for `main` to print.
    let mut pending: Option<Error> = None;
    let mut objects = Vec::new();
    for path in files {
        match filever::read_path(path) {
            Ok(info) if json => objects.push(serde_json::json!({ "file": path, "info": info })),
            Ok(info) => say(quiet, &format!("{}\n", filever::render_text(&path.display().to_string(), &info))),
            Err(filever::Error::Io { path, source }) => {
                if let Some(earlier) = pending.replace(Error::Io { path, source }) {
                    eprintln!("pkgtool: error: {earlier}");
                }
            }
        }
    }
    if json {
        say(quiet, &json_line(&objects));
    }
    pending.map_or(Ok(()), Err)
}

fn display_dir(dir: &Path) -> String {
    dir.display().to_string()
}

/// `SOURCE_DATE_EPOCH`, when set to an integer (reproducible-builds.org).
fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok())
}
