//! `pkgtool`: the packager's command line. Parses flags, calls the library, prints, and
//! maps every error to the documented exit code in one place (`main`).
//!
//! `build --self-contained` puts the installer stub `hotfix-installer` before the package
//! (`--stub PATH`, or the one cargo built beside this binary — the size-minded `installer`
//! profile's in `target/installer/` when it is as new), so that the package is one
//! executable installer; the signature covers the stub. `generate-docs DIR` writes man pages
//! and shell completions from these clap definitions.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod docs;

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};
use hotfix_schema::Limits;
use hotfix_schema::output::{self, Failure, Message, Success};
use hotfix_schema::sigblock::key_id_hex;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pkgtool::inspect::{self, Verification};
use pkgtool::output as out;
use pkgtool::tagcheck::TagCheck;
use pkgtool::{Error, TrustedKey, build, extract, keys, read};

/// Builds, signs, verifies, inspects and extracts hotfix packages.
#[derive(Parser)]
#[command(name = "pkgtool", version, about, long_about = None)]
struct Cli {
    /// Print nothing but errors, and no progress bar.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// Print the result as one JSON object (`"schema": 1`, `exit_code`; on failure an `error` with its
    /// `class`), errors included; the JSON Schemas are in schema/json/pkgtool/.
    #[arg(long, global = true)]
    json: bool,
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
        /// Write a self-contained installer: the installer stub `hotfix-installer` (found next to pkgtool,
        /// or in target/installer/) followed by the package, one executable covered by the signature.
        #[arg(long)]
        self_contained: bool,
        /// The installer stub to use instead of the `hotfix-installer` cargo built (implies --self-contained).
        #[arg(long, value_name = "PATH")]
        stub: Option<PathBuf>,
        /// Build even when a binary's branch tag disagrees with its variant (warns instead).
        #[arg(long)]
        no_tag_check: bool,
        /// Store every content as a blob of its own instead of packing small first builds together.
        #[arg(long)]
        no_pack: bool,
        /// Zstandard only: no LZMA or PPMd blobs, so that every blob decodes at Zstandard speed (a larger package).
        #[arg(long)]
        fast_decode: bool,
        /// An earlier package (signed with the same key) that this one must be cumulative with:
        /// a build numbered above one of its builds of the same component, baseline and branch
        /// holds all its fixes, one numbered below holds none it lacks. Repeat for several.
        #[arg(long, value_name = "PKG")]
        previous: Vec<PathBuf>,
    },
    /// Authenticate a package: the signature over every byte, the structure and the manifest, at
    /// the speed of hashing the file. With --deep, also decode every blob against the manifest.
    Verify {
        /// The package.
        pkg: PathBuf,
        /// A trusted public key (SPKI PEM); give several to trust several.
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        /// Also decode every blob and check it against the manifest's size and SHA-256 (what a
        /// release pipeline runs before publishing; install and extract always do it).
        #[arg(long)]
        deep: bool,
    },
    /// Describe a package: kind, baselines, variants, fixes, sizes, signer.
    Inspect {
        /// The package.
        pkg: PathBuf,
        /// Verify against these keys first (otherwise the output says "not verified").
        #[arg(long = "trust")]
        trust: Vec<PathBuf>,
    },
    /// Authenticate a package, then decode every blob and write every variant to
    /// DIR/<baseline>/<branch>/<component>/.
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
    },
    /// Publish packages to an update channel: a TUF repository of static files (issue #14).
    #[cfg(feature = "repo")]
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Write man pages (DIR/man1/) and shell completions (DIR/completions/) for pkgtool.
    GenerateDocs {
        /// The output directory.
        dir: PathBuf,
    },
}

/// The keys of a repository's online roles (the root key is only needed by `repo init` and
/// `repo rotate`). Repeat a flag to give a role as many keys as its threshold (`repo rotate`).
#[cfg(feature = "repo")]
#[derive(clap::Args)]
struct RepoKeys {
    /// The targets role's secret key (lists the packages; keep it with the release pipeline).
    #[arg(long, value_name = "KEY", required = true)]
    targets_key: Vec<PathBuf>,
    /// The snapshot role's secret key.
    #[arg(long, value_name = "KEY", required = true)]
    snapshot_key: Vec<PathBuf>,
    /// The timestamp role's secret key (the only one that must stay online).
    #[arg(long, value_name = "KEY", required = true)]
    timestamp_key: Vec<PathBuf>,
}

#[cfg(feature = "repo")]
#[derive(Subcommand)]
enum RepoCmd {
    /// Create an empty repository in DIR: root.json (to pin on clients), metadata/, targets/.
    Init {
        /// The repository directory.
        dir: PathBuf,
        /// The root role's secret key; keep it offline after this. Repeat for several root keys
        /// (each signs the first root.json).
        #[arg(long, value_name = "KEY", required = true)]
        root_key: Vec<PathBuf>,
        /// How many root keys must sign a later root.json (`repo rotate`).
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        root_threshold: u64,
        #[command(flatten)]
        keys: RepoKeys,
    },
    /// Verify a package, then publish it: copied to targets/, listed with its id, kind,
    /// product, baselines, channel, fixes and the packages it supersedes.
    Add {
        /// The repository directory.
        dir: PathBuf,
        /// The package.
        pkg: PathBuf,
        /// The package signer's public key (the package is verified before anything is written).
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        /// The prerelease role's secret key: a package whose manifest says channel prerelease is
        /// published only under the prerelease role, never with the release packages.
        #[arg(long, value_name = "KEY")]
        prerelease_key: Option<PathBuf>,
        #[command(flatten)]
        keys: RepoKeys,
    },
    /// Delegate a role from targets: `rollout` (signs the rollout policy as rollout-*: schedules,
    /// pauses and halts packages, never adds one) or `prerelease` (lists prerelease packages under
    /// prerelease-*, which automatic mode never installs unless a root opted into the prerelease ring).
    Delegate {
        /// The repository directory.
        dir: PathBuf,
        /// `rollout` or `prerelease`.
        #[arg(long, value_parser = ["rollout", "prerelease"])]
        role: String,
        /// The delegated role's secret key.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        #[command(flatten)]
        keys: RepoKeys,
    },
    /// Change the rollout policy (signed by the rollout role): replace it with --policy FILE (JSON),
    /// and/or schedule, pause, halt or resume packages. Reaches every root at its next poll.
    Rollout {
        /// The repository directory.
        dir: PathBuf,
        /// The rollout role's secret key.
        #[arg(long, value_name = "KEY")]
        rollout_key: PathBuf,
        /// The snapshot role's secret key (repeat to reach a threshold).
        #[arg(long, value_name = "KEY", required = true)]
        snapshot_key: Vec<PathBuf>,
        /// The timestamp role's secret key (repeat to reach a threshold).
        #[arg(long, value_name = "KEY", required = true)]
        timestamp_key: Vec<PathBuf>,
        /// A whole policy to sign, JSON: {"packages": {"KB5": {"state": "active", "waves": {"pilot":
        /// {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}}}}}.
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        /// Schedule a package's wave for a ring: ID RING START END (RFC 3339 times).
        #[arg(long, num_args = 4, value_names = ["ID", "RING", "START", "END"], action = clap::ArgAction::Append)]
        wave: Vec<String>,
        /// Stop new installs of a package.
        #[arg(long, value_name = "ID")]
        pause: Vec<String>,
        /// Stop new installs, and make roots that installed it uninstall it.
        #[arg(long, value_name = "ID")]
        halt: Vec<String>,
        /// Let a paused or halted package roll out again by its waves.
        #[arg(long, value_name = "ID")]
        resume: Vec<String>,
    },
    /// Re-sign timestamp.json (a periodic job: clients refuse an expired one).
    Timestamp {
        /// The repository directory.
        dir: PathBuf,
        /// The timestamp role's secret key; repeat to reach the role's threshold.
        #[arg(long, value_name = "KEY", required = true)]
        timestamp_key: Vec<PathBuf>,
        /// When it expires (RFC 3339, e.g. 2026-12-06T00:00:00Z); default: in 7 days.
        #[arg(long, value_name = "TIME")]
        expires: Option<jiff::Timestamp>,
    },
    /// Rotate a role's keys, root included, with a threshold: a new root.json, version N+1.
    ///
    /// In metadata/N+1.root.json ROLE's keys are exactly the --new-key keys with --threshold; it
    /// is signed by a threshold of the current root's keys (--root-key) and, for a root rotation,
    /// by a threshold of the new root keys (clients check both). Then re-sign what the rotated role signs, so that the repository stays loadable: a
    /// targets rotation writes new targets.json (signed by the new keys), snapshot.json
    /// (--snapshot-key) and timestamp.json (--timestamp-key); a snapshot rotation new
    /// snapshot.json and timestamp.json; a timestamp rotation a new timestamp.json. Clients
    /// follow the new root from the one they pinned, one version at a time. Nothing is
    /// written unless every check passes.
    #[command(
        after_help = "Examples:\n  pkgtool repo rotate repo --role root --new-key r2.key --new-key r3.key --new-key r4.key \\\n      --threshold 2 --root-key r1.key\n  pkgtool repo rotate repo --role timestamp --new-key ts2.key --threshold 1 --root-key r2.key \\\n      --root-key r3.key --timestamp-key ts1.key"
    )]
    Rotate {
        /// The repository directory.
        dir: PathBuf,
        /// The role whose keys are replaced.
        #[arg(long, value_enum)]
        role: RotateRole,
        /// A new key of the role. Repeat for several; they must be distinct. A secret key (NAME.key)
        /// signs; a public key (NAME.pub) is only listed, and at least --threshold must be secret.
        #[arg(long, value_name = "KEY", required = true)]
        new_key: Vec<PathBuf>,
        /// How many of the new keys must sign the role's metadata (1 to the number of new keys).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        threshold: u64,
        /// A secret root key of the current root.json; repeat until its root threshold is reached.
        #[arg(long, value_name = "KEY", required = true)]
        root_key: Vec<PathBuf>,
        /// A targets key. A targets rotation signs targets.json with the new keys; the old key given
        /// here signs too, so that a client that has not seen the new root yet accepts it.
        #[arg(long, value_name = "KEY")]
        targets_key: Vec<PathBuf>,
        /// A snapshot key: needed after a targets rotation; for a snapshot rotation, the old key
        /// (optional) signs too.
        #[arg(long, value_name = "KEY")]
        snapshot_key: Vec<PathBuf>,
        /// A timestamp key: needed after a targets or snapshot rotation; for a timestamp rotation,
        /// the old key (optional) signs too.
        #[arg(long, value_name = "KEY")]
        timestamp_key: Vec<PathBuf>,
    },
}

/// The role `repo rotate` rotates.
#[cfg(feature = "repo")]
#[derive(Clone, Copy, clap::ValueEnum)]
enum RotateRole {
    /// root.json's signers (offline keys).
    Root,
    /// targets.json's signers.
    Targets,
    /// snapshot.json's signers.
    Snapshot,
    /// timestamp.json's signers (the online key).
    Timestamp,
}

/// A command's error: the packager's, or the update channel's.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Pkg(#[from] Error),
    #[cfg(feature = "repo")]
    #[error(transparent)]
    Channel(#[from] hotfix_channel::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Pkg(e) => e.exit_code(),
            #[cfg(feature = "repo")]
            CliError::Channel(e) => e.exit_code(),
        }
    }

    fn class(&self) -> &'static str {
        match self {
            CliError::Pkg(e) => e.class(),
            #[cfg(feature = "repo")]
            CliError::Channel(e) => e.class(),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let json = args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return clap_exit(&e, json),
    };
    match run(&cli) {
        Ok(shown) => {
            // --quiet silences the text, not the JSON a script asked for.
            if cli.json {
                print_out(&shown.json);
            } else if !cli.quiet {
                print_out(&shown.text);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pkgtool: error: {e}");
            if cli.json {
                print_out(&output::to_text(&Failure::new(e.class(), e.to_string(), e.exit_code())));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Reports a command line clap refused (its own message; help and version exit 0). With
/// `--json`, help and version are a message object and an error is a failure object of
/// class `usage`; clap's text goes to standard error.
fn clap_exit(e: &clap::Error, json: bool) -> ExitCode {
    let code = u8::try_from(e.exit_code()).unwrap_or(2);
    if !json {
        let _ = e.print();
        return ExitCode::from(code);
    }
    let text = e.render().to_string();
    if code == 0 {
        print_out(&output::to_text(&Success::new(Message { message: text }, 0)));
    } else {
        eprint!("{text}");
        let message = text.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        print_out(&output::to_text(&Failure::new("usage", message, code)));
    }
    ExitCode::from(code)
}

fn load_trust(paths: &[PathBuf]) -> Result<Vec<TrustedKey>, Error> {
    paths.iter().map(|p| TrustedKey::load(p)).collect()
}

/// Writes to standard output, ignoring a closed pipe.
fn print_out(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// A progress bar on standard error while a package is authenticated (then, for an
/// extraction or `verify --deep`, while it is decoded); nothing when quiet, with JSON, or
/// when standard error is not a terminal. Cleared when dropped.
struct Progress {
    bar: Option<ProgressBar>,
    then: Option<&'static str>,
}

impl Progress {
    /// A bar for authentication; `then` labels the decode pass that follows it, if any.
    fn new(cli: &Cli, then: Option<&'static str>) -> Progress {
        let show = !cli.quiet && !cli.json && std::io::stderr().is_terminal();
        let bar = show.then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({eta})")
                .map(|s| s.progress_chars("=> "))
                .unwrap_or_else(|_| ProgressStyle::default_bar());
            b.set_style(style);
            b.set_message("verifying");
            b
        });
        Progress { bar, then }
    }

    fn update(&mut self, done: u64, total: u64) {
        let Some(bar) = &self.bar else { return };
        if done >= total
            && let Some(label) = self.then.take()
        {
            bar.set_message(label);
            bar.set_position(0);
            return;
        }
        bar.set_length(total);
        bar.set_position(done.min(total));
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The installer stub's file name.
/// The manifests of the `--previous` packages, each authenticated with the public half of
/// the signing key `key` (a vendor's earlier packages carry its signature).
fn previous_manifests(
    paths: &[PathBuf],
    key: &Path,
    secret: &ed25519_dalek::SigningKey,
) -> pkgtool::error::Result<Vec<hotfix_schema::Manifest>> {
    let public = secret.verifying_key();
    let trusted = [keys::TrustedKey { id: keys::key_id(&public), key: public, source: key.to_path_buf() }];
    paths
        .iter()
        .map(|p| {
            Ok(pkgtool::read::verify(p, &trusted, &hotfix_schema::Limits::default(), &mut |_, _| {})?.into_manifest())
        })
        .collect()
}

const STUB: &str = "hotfix-installer";

/// The installer stub for `build`: `--stub`; or, pkgtool being in a cargo profile's
/// directory (`target/<profile>/`), the size-minded `target/installer/hotfix-installer`
/// unless the one beside pkgtool is newer (a stale release stub is not embedded); or the
/// `hotfix-installer` beside this binary.
fn find_stub(stub: Option<&Path>) -> Result<PathBuf, Error> {
    if let Some(s) = stub {
        check_stub(s)?;
        return Ok(s.to_path_buf());
    }
    let exe = std::env::current_exe().map_err(|e| Error::Io { path: PathBuf::from("pkgtool"), source: e })?;
    let beside = exe.with_file_name(STUB);
    let sized = exe.parent().and_then(Path::parent).map(|target| target.join("installer").join(STUB));
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let chosen = match (sized.as_deref().and_then(|p| modified(p).map(|t| (p, t))), modified(&beside)) {
        (Some((p, t)), Some(b)) if t >= b => Some(p.to_path_buf()),
        (Some((p, _)), None) => Some(p.to_path_buf()),
        (_, Some(_)) => Some(beside.clone()),
        (None, None) => None,
    };
    chosen.ok_or_else(|| Error::Refused {
        path: beside,
        msg: "no installer stub (hotfix-installer) next to pkgtool or in target/installer/; nothing was built. \
              Build it (scripts/build-installer.sh, or cargo build --bins) or pass \
              --stub PATH"
            .into(),
    })
}

/// A stub must be an executable (ELF or PE), or the installer would not run.
fn check_stub(path: &Path) -> Result<(), Error> {
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    let n = std::io::Read::read(&mut f, &mut magic).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
    if magic[..n].starts_with(b"\x7fELF") || magic[..n].starts_with(b"MZ") {
        return Ok(());
    }
    Err(Error::Refused {
        path: path.to_path_buf(),
        msg: "is not an executable (ELF or PE); the installer stub is the hotfix-installer binary. Nothing was built"
            .into(),
    })
}

/// What a command prints: its text, and its `--json` body.
struct Shown {
    text: String,
    json: String,
}

impl Shown {
    fn new(text: String, body: &impl serde::Serialize) -> Shown {
        Shown { text, json: output::to_text(&Success::new(body, 0)) }
    }
}

fn run(cli: &Cli) -> Result<Shown, CliError> {
    let limits = Limits::default();
    match &cli.cmd {
        Cmd::Keygen { name } => {
            let key = keys::generate(name)?;
            let body = out::Keygen {
                secret_key: PathBuf::from(format!("{}.key", name.display())),
                public_key: PathBuf::from(format!("{}.pub", name.display())),
                key_id: key.id_hex(),
            };
            let text =
                format!("wrote {0}.key (secret, mode 0600) and {0}.pub\nkey id {1}\n", name.display(), key.id_hex());
            Ok(Shown::new(text, &body))
        }
        Cmd::Build { spec, key, out, self_contained, stub, no_tag_check, no_pack, fast_decode, previous } => {
            let secret = keys::load_secret(key)?;
            let previous = previous_manifests(previous, key, &secret)?;
            let tag_check = if *no_tag_check { TagCheck::WarnOnly } else { TagCheck::Enforce };
            let stub = if *self_contained || stub.is_some() { Some(find_stub(stub.as_deref())?) } else { None };
            let opts = build::BuildOptions {
                source_date_epoch: source_date_epoch(),
                tag_check,
                stub: stub.clone(),
                pack: !*no_pack,
                lzma: !*fast_decode,
                previous,
                ..Default::default()
            };
            let r = build::build(spec, &secret, out, &opts)?;
            for w in &r.warnings {
                eprintln!("pkgtool: warning: {w}");
            }
            let what = match &stub {
                Some(s) => format!("self-contained installer {} (stub {})", r.out.display(), s.display()),
                None => r.out.display().to_string(),
            };
            let text = format!(
                "built {what} ({}, {} variants, {} distinct contents in {} blobs, {} bytes), signed by key {}\n",
                r.manifest.package.id,
                r.manifest.variants.len(),
                r.manifest.content_index().len(),
                r.manifest.blobs.len(),
                r.size,
                key_id_hex(&r.key_id)
            );
            let body = out::Build {
                package: r.out.clone(),
                size: r.size,
                key_id: key_id_hex(&r.key_id),
                id: r.manifest.package.id.to_string(),
                kind: r.manifest.package.kind,
                variants: r.manifest.variants.len(),
                contents: r.manifest.content_index().len(),
                blobs: r.manifest.blobs.len(),
                self_contained: stub.is_some(),
                stub,
                warnings: r.warnings.iter().map(ToString::to_string).collect(),
            };
            Ok(Shown::new(text, &body))
        }
        Cmd::Verify { pkg, trust, deep } => {
            let keys = load_trust(trust)?;
            let depth = if *deep { read::Depth::Deep } else { read::Depth::Authenticate };
            let mut bar = Progress::new(cli, deep.then_some("decoding"));
            let v = read::check(pkg, &keys, &limits, depth, &mut |d, t| bar.update(d, t));
            drop(bar);
            let v = v?;
            let m = &v.manifest;
            let checked = if *deep {
                format!("every byte, the manifest and {} blobs decoded and checked", m.blobs.len())
            } else {
                format!(
                    "every byte and the manifest checked; {} blobs not decoded (--deep decodes them)",
                    m.blobs.len()
                )
            };
            let text = format!(
                "{}: OK — {} ({}) signed by key {} ({}); {checked}\n",
                pkg.display(),
                m.package.id,
                m.package.kind,
                v.signer.id_hex(),
                v.signer.source.display(),
            );
            let body = out::Verify {
                package: pkg.clone(),
                verified: true,
                deep: *deep,
                id: m.package.id.to_string(),
                kind: m.package.kind,
                signer_key_id: v.signer.id_hex(),
                signer_key_file: v.signer.source.clone(),
                variants: m.variants.len(),
                blobs: m.blobs.len(),
                file_size: v.archive.len,
            };
            Ok(Shown::new(text, &body))
        }
        Cmd::Inspect { pkg, trust } => {
            let (manifest, archive, verification) = if trust.is_empty() {
                let u = read::read_unverified(pkg, &limits)?;
                (u.manifest, u.archive, Verification::NotVerified)
            } else {
                let keys = load_trust(trust)?;
                let mut bar = Progress::new(cli, None);
                let v = read::verify(pkg, &keys, &limits, &mut |d, t| bar.update(d, t));
                drop(bar);
                let v = v?;
                (v.manifest, v.archive, Verification::Verified)
            };
            let i = inspect::inspection(&manifest, &archive, verification);
            Ok(Shown::new(inspect::render_text(&i), &i))
        }
        Cmd::Extract { pkg, dir, trust } => {
            let keys = load_trust(trust)?;
            let mut bar = Progress::new(cli, Some("extracting"));
            let r = extract::extract(pkg, dir, &keys, &limits, &mut |d, t| bar.update(d, t));
            drop(bar);
            let r = r?;
            let m = &r.verified.manifest;
            let text = format!(
                "{}: verified; extracted {} files ({} bytes) of {} variants into {}\n",
                pkg.display(),
                r.files,
                r.bytes,
                m.variants.len(),
                display_dir(dir)
            );
            let body = out::Extract {
                package: pkg.clone(),
                verified: true,
                id: m.package.id.to_string(),
                dir: dir.clone(),
                signer_key_id: r.verified.signer.id_hex(),
                files: r.files,
                bytes: r.bytes,
                variants: m.variants.len(),
                stub_size: r.verified.archive.prefix_len,
            };
            Ok(Shown::new(text, &body))
        }
        Cmd::Filever { files } => Ok(filever_cmd(files, cli.json || cli.quiet)?),
        #[cfg(feature = "repo")]
        Cmd::Repo(r) => repo(r),
        Cmd::GenerateDocs { dir } => {
            let g = docs::generate(Cli::command(), dir)?;
            let all: Vec<&PathBuf> = g.man.iter().chain(&g.completions).collect();
            let list: Vec<String> = all.iter().map(|f| format!("  {}\n", f.display())).collect();
            let text = format!(
                "wrote {} man pages and {} completion scripts:\n{}",
                g.man.len(),
                g.completions.len(),
                list.concat()
            );
            Ok(Shown::new(text, &g))
        }
    }
}

/// `pkgtool filever`: every readable file gets a block; a file that cannot be read is an
/// error after the others are printed — unless `no_text` (`--json`, whose one object is
/// the files' or, if one could not be read, the error's; or `--quiet`).
fn filever_cmd(files: &[PathBuf], no_text: bool) -> Result<Shown, Error> {
    // Every unreadable file is reported; the last one is returned for `main` to print.
    let mut pending: Option<Error> = None;
    let mut entries = Vec::new();
    let mut text = String::new();
    for path in files {
        match filever::read_path(path) {
            Ok(info) => {
                text.push_str(&format!("{}\n", filever::render_text(&path.display().to_string(), &info)));
                entries.push(out::FileverEntry { file: path.clone(), info });
            }
            Err(filever::Error::Io { path, source }) => {
                if let Some(earlier) = pending.replace(Error::Io { path, source }) {
                    eprintln!("pkgtool: error: {earlier}");
                }
            }
        }
    }
    match pending {
        Some(e) => {
            // The text of the files that were read is still printed before the error.
            if !no_text {
                print_out(&text);
            }
            Err(e)
        }
        None => Ok(Shown::new(text, &out::Filever { files: entries })),
    }
}

fn display_dir(dir: &Path) -> String {
    dir.display().to_string()
}

/// `SOURCE_DATE_EPOCH`, when set to an integer (reproducible-builds.org).
fn source_date_epoch() -> Option<i64> {
    std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|s| s.trim().parse().ok())
}

/// `pkgtool repo …`: the update channel's publishing side (hotfix_channel::repo).
#[cfg(feature = "repo")]
fn repo(cmd: &RepoCmd) -> Result<Shown, CliError> {
    use hotfix_channel::repo::{self, Expiries, RoleKeyFiles};
    let now = jiff::Timestamp::now();
    let files = |root: &[PathBuf], k: &RepoKeys| RoleKeyFiles {
        root: root.to_vec(),
        targets: k.targets_key.clone(),
        snapshot: k.snapshot_key.clone(),
        timestamp: k.timestamp_key.clone(),
    };
    match cmd {
        RepoCmd::Init { dir, root_key, root_threshold, keys } => {
            let r = repo::init(dir, &files(root_key, keys), *root_threshold, &Expiries::from_now(now))?;
            let [_, targets, snapshot, timestamp] = &r.key_ids;
            let text = format!(
                "created repository {}; pin {} on clients\nkeys: root {} (threshold {root_threshold}; keep offline), targets {targets}, snapshot {snapshot}, timestamp {timestamp}\n",
                dir.display(),
                r.root_json.display(),
                r.root_key_ids.join(", ")
            );
            let [root, ..] = &r.key_ids;
            let body = out::Repo::Init(out::RepoInit {
                repository: dir.clone(),
                root_json: r.root_json.clone(),
                root_key_ids: r.root_key_ids.clone(),
                root_threshold: *root_threshold,
                key_ids: out::RoleKeyIds {
                    root: root.to_string(),
                    targets: targets.to_string(),
                    snapshot: snapshot.to_string(),
                    timestamp: timestamp.to_string(),
                },
            });
            Ok(Shown::new(text, &body))
        }
        RepoCmd::Add { dir, pkg, trust, prerelease_key, keys } => {
            let trusted = load_trust(trust)?;
            // The package is authenticated, every byte against its signature, before its
            // manifest is believed or anything is written.
            let v = read::verify(pkg, &trusted, &Limits::default(), &mut |_, _| {})?;
            let meta = hotfix_channel::meta::PackageMeta::from_manifest(&v.manifest);
            drop(v);
            if meta.channel == hotfix_schema::Channel::Prerelease {
                let Some(pre) = prerelease_key else {
                    return Err(hotfix_channel::Error::Refused {
                        what: pkg.display().to_string(),
                        msg: format!(
                            "{} is a prerelease package: it is published under the prerelease role (give \
                             --prerelease-key), never with the release packages",
                            meta.id
                        ),
                    }
                    .into());
                };
                let ck = hotfix_channel::roles::ChangeKeys {
                    targets: &[],
                    role: pre,
                    snapshot: &keys.snapshot_key,
                    timestamp: &keys.timestamp_key,
                };
                let target =
                    hotfix_channel::roles::add_prerelease(dir, pkg, meta.clone(), &ck, &Expiries::from_now(now))?;
                let text = format!("added prerelease {} as target {target} of the prerelease role\n", meta.id);
                let body = out::Repo::Add(out::RepoAdd {
                    repository: dir.clone(),
                    target,
                    targets_version: 0,
                    metadata: meta,
                });
                return Ok(Shown::new(text, &body));
            }
            let a = repo::add(dir, pkg, meta, &files(&[], keys), &Expiries::from_now(now))?;
            let sup: Vec<String> = a.meta.supersedes.iter().map(ToString::to_string).collect();
            let text = format!(
                "added {} as target {} (targets.json version {}){}\n",
                a.meta.id,
                a.target,
                a.targets_version,
                if sup.is_empty() { String::new() } else { format!("; supersedes {}", sup.join(", ")) }
            );
            let body = out::Repo::Add(out::RepoAdd {
                repository: dir.clone(),
                target: a.target.to_string(),
                targets_version: a.targets_version,
                metadata: a.meta.clone(),
            });
            Ok(Shown::new(text, &body))
        }
        RepoCmd::Delegate { dir, role, key, keys } => {
            use hotfix_channel::roles::{self, ChangeKeys, Delegated};
            let which = if role == "rollout" { Delegated::Rollout } else { Delegated::Prerelease };
            let ck = ChangeKeys {
                targets: &keys.targets_key,
                role: key,
                snapshot: &keys.snapshot_key,
                timestamp: &keys.timestamp_key,
            };
            roles::delegate(dir, which, &ck, &Expiries::from_now(now))?;
            let text = format!("delegated the {} role, trusted for {} only\n", which.name(), which.pattern());
            let body = out::Repo::Delegate(out::RepoDelegate {
                repository: dir.clone(),
                role: which.name().to_string(),
                paths: which.pattern(),
            });
            Ok(Shown::new(text, &body))
        }
        RepoCmd::Rollout { dir, rollout_key, snapshot_key, timestamp_key, policy, wave, pause, halt, resume } => {
            use hotfix_channel::roles::{self, ChangeKeys};
            use hotfix_channel::rollout::{Policy, State, Wave};
            let bad = |what: &str, msg: String| hotfix_channel::Error::Refused { what: what.to_string(), msg };
            let mut p: Policy = match policy {
                Some(f) => {
                    let text = std::fs::read(f).map_err(hotfix_channel::Error::io(f))?;
                    serde_json::from_slice(&text)
                        .map_err(|e| bad(&f.display().to_string(), format!("not a policy: {e}")))?
                }
                None => roles::current_policy(dir)?.unwrap_or_default(),
            };
            for w in wave.chunks(4) {
                let [id, ring, start, end] = w else {
                    return Err(bad("--wave", "takes ID RING START END".into()).into());
                };
                let t = |v: &str| v.parse::<jiff::Timestamp>().map_err(|e| bad("--wave", format!("{v}: {e}")));
                let wave = Wave { start: t(start)?, end: t(end)? };
                if wave.end < wave.start {
                    return Err(bad("--wave", format!("{id} {ring}: the end is before the start")).into());
                }
                p.packages.entry(id.clone()).or_default().waves.insert(ring.clone(), wave);
            }
            for (ids, state) in [(pause, State::Paused), (halt, State::Halted), (resume, State::Active)] {
                for id in ids {
                    p.packages.entry(id.clone()).or_default().state = state;
                }
            }
            let ck = ChangeKeys { targets: &[], role: rollout_key, snapshot: snapshot_key, timestamp: timestamp_key };
            roles::set_policy(dir, &p, &ck, &Expiries::from_now(now))?;
            let mut text = String::from("rollout policy signed:\n");
            for (id, s) in &p.packages {
                let state = match s.state {
                    State::Active => "active",
                    State::Paused => "paused",
                    State::Halted => "halted",
                };
                text.push_str(&format!("  {id}: {state}"));
                for (ring, w) in &s.waves {
                    text.push_str(&format!("; {ring} {} to {}", w.start, w.end));
                }
                text.push('\n');
            }
            let body = out::Repo::Rollout(out::RepoRollout { repository: dir.clone(), policy: p });
            Ok(Shown::new(text, &body))
        }
        RepoCmd::Timestamp { dir, timestamp_key, expires } => {
            let expires = expires.unwrap_or_else(|| Expiries::from_now(now).timestamp);
            let v = repo::timestamp(dir, timestamp_key, expires)?;
            let text = format!("timestamp.json version {v}, expires {expires}\n");
            let body = out::Repo::Timestamp(out::RepoTimestamp {
                repository: dir.clone(),
                version: v,
                expires: expires.to_string(),
            });
            Ok(Shown::new(text, &body))
        }
        RepoCmd::Rotate { dir, role, new_key, threshold, root_key, targets_key, snapshot_key, timestamp_key } => {
            use hotfix_channel::rotate::{self, Role, Rotation};
            let role = match role {
                RotateRole::Root => Role::Root,
                RotateRole::Targets => Role::Targets,
                RotateRole::Snapshot => Role::Snapshot,
                RotateRole::Timestamp => Role::Timestamp,
            };
            let rot = Rotation {
                role,
                new_keys: new_key.clone(),
                threshold: *threshold,
                root_keys: root_key.clone(),
                targets_keys: targets_key.clone(),
                snapshot_keys: snapshot_key.clone(),
                timestamp_keys: timestamp_key.clone(),
            };
            let r = rotate::rotate(dir, &rot, &Expiries::from_now(now))?;
            let mut text = format!(
                "rotated the {} keys: root.json version {} lists {} ({} of {} must sign)\n",
                r.role,
                r.root_version,
                r.key_ids.join(", "),
                r.threshold,
                r.key_ids.len()
            );
            for f in &r.written {
                text.push_str(&format!("wrote {}\n", f.display()));
            }
            if !r.accepted_by_previous_root {
                text.push_str(&format!(
                    "note: the re-signed metadata is signed by the new {} keys only; a client that read it \
                     before the new root landed refused it and will accept it on its next poll \
                     (give the old key with --{}-key to avoid that)\n",
                    r.role, r.role
                ));
            }
            let body = out::Repo::Rotate(out::RepoRotate {
                repository: dir.clone(),
                role: r.role.into(),
                root_version: r.root_version,
                key_ids: r.key_ids.clone(),
                threshold: r.threshold,
                written: r.written.clone(),
                accepted_by_previous_root: r.accepted_by_previous_root,
            });
            Ok(Shown::new(text, &body))
        }
    }
}
