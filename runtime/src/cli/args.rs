//! The clap definitions of the two command lines the `hotfix` binary has: its own
//! ([`Cli`]) and, when it carries a package, the self-contained installer's
//! ([`InstallerCli`]). Windows-style switches are rewritten into these long options first
//! (`crate::switches`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::switches;

/// Options every command takes, on both command lines.
#[derive(Args, Clone, Debug, Default)]
pub struct Common {
    /// The system root to service [default: $HOTFIX_ROOT; for a package file, also the first line
    /// of /etc/hotfix/<product>.root]
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// No output but errors, no progress bar (/quiet).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// A progress bar only, no other output but errors (/passive).
    #[arg(long, global = true, conflicts_with = "quiet")]
    pub passive: bool,
    /// Print the result as one JSON object (`"schema": 1`, `exit_code`; on failure an `error` with its `class`),
    /// errors included; the JSON Schemas are in schema/json/hotfix/.
    #[arg(long, global = true)]
    pub json: bool,
    /// Append a full log of the operation to FILE (/log:FILE): time, command, root, package, decision per
    /// component with its reason, files changed, result.
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Do not restart (/norestart): accepted for scripts; this tool never restarts the machine, and a needed
    /// restart is still reported with exit 3.
    #[arg(long, global = true)]
    pub norestart: bool,
    /// Report a restart as required after a successful change, exit 3 (/forcerestart); this tool never
    /// restarts the machine itself.
    #[arg(long, global = true, conflicts_with = "norestart")]
    pub forcerestart: bool,
    /// If another servicing operation holds the root, wait for it instead of exiting 8.
    #[arg(long, global = true)]
    pub wait: bool,
    /// The value of a /B: switch (rewritten from `/B:VALUE` before parsing; install only).
    #[arg(long = "b-switch", global = true, hide = true)]
    pub b_switch: Option<String>,
}

/// What to do with a package file, beside installing it.
#[derive(Args, Clone, Debug, Default)]
pub struct PackageOpts {
    /// Put the package's components on LDR: `qfe` (same as /B:QFE), or `<BASELINE>qfe` such as `sp1qfe`
    /// for that baseline only (same as /B:SP1QFE); any case.
    #[arg(long, value_name = "QFE|<BASELINE>QFE")]
    pub branch: Option<String>,
    /// Accept a prerelease package.
    #[arg(long)]
    pub allow_prerelease: bool,
    /// Remove the package this file carries instead of installing it (/uninstall).
    #[arg(long, conflicts_with_all = ["extract", "what_if", "branch", "allow_prerelease"])]
    pub uninstall: bool,
    /// Put back the installed package this file carries (the same manifest, verified against the root's
    /// keys): write again the blobs of it the store lacks or holds damaged, then restore its live files that
    /// differ from the inventory. The way back from a damaged store; nothing is decided again.
    #[arg(long, conflicts_with_all = ["uninstall", "extract", "what_if", "branch", "allow_prerelease"])]
    pub reinstall: bool,
    /// Verify the package and extract every variant to DIR/<baseline>/<branch>/<component>/ instead of
    /// installing it (/extract:DIR); verified with --trust keys or the root's.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["what_if", "branch", "allow_prerelease"])]
    pub extract: Option<PathBuf>,
    /// Show what the package is and what installing it would do on the root, changing nothing. Exit code:
    /// what installing would end with (0, 4 not applicable, 5 already installed, 7 refused by policy).
    #[arg(long)]
    pub what_if: bool,
    /// A public key (SPKI PEM) to verify with for --extract, or for --what-if without a root.
    #[arg(long, value_name = "KEY.pub")]
    pub trust: Vec<PathBuf>,
}

/// Services a system root from hotfix packages: picks GDR or LDR per component, installs
/// transactionally, keeps every build in a store, uninstalls in any order.
#[derive(Parser, Debug)]
#[command(name = "hotfix", version, about, long_about = None, after_help = switches::help_text())]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub common: Common,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// `policy branch` values.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PolicyArg {
    /// Every component on LDR.
    Ldr,
    /// The servicing rule decides per component.
    Auto,
}

/// The `hotfix` commands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Make DIR a servicing root for a product, trusting a signing key.
    Init {
        /// The product the root holds.
        #[arg(long)]
        product: String,
        /// A public key (SPKI PEM) trusted to sign packages.
        #[arg(long)]
        trust: PathBuf,
    },
    /// Install a package or a self-contained installer (also: /B:QFE, /B:<BASELINE>QFE, /uninstall,
    /// /extract:DIR). `hotfix PKG [SWITCHES]` means the same.
    #[command(after_help = switches::help_text())]
    Install {
        /// The package file.
        pkg: PathBuf,
        /// What to do with it.
        #[command(flatten)]
        opts: PackageOpts,
    },
    /// Uninstall a package, in any order.
    Uninstall {
        /// The package id.
        id: String,
    },
    /// List the installed packages; with an id, that package in detail: its builds and their
    /// state on this root, fixes, options.
    List {
        /// An installed package's id (any case).
        id: Option<String>,
    },
    /// Which installed package and component own a path (like `dpkg -S`): the active build
    /// whose file it is, and every other installed build that has one there.
    Owner {
        /// A path below the root (relative, or absolute inside the root).
        path: String,
    },
    /// The files of an installed package's builds, or of a component's builds (like `dpkg -L`).
    Files {
        /// A package id (any case) or a component name.
        name: String,
    },
    /// Baseline, and per component the branch and why, version, fixes, package.
    Status {
        /// Only this component.
        component: Option<String>,
    },
    /// Is a fix present? Exit 0 if an active build contains it, 9 if none does.
    Query {
        /// The fix id, e.g. KB123456.
        #[arg(long)]
        fix: String,
    },
    /// The persistent branch policy.
    Policy {
        /// What to set.
        #[command(subcommand)]
        what: PolicyCmd,
    },
    /// Compare every live file with the inventory, and the store with the packages.
    Check {
        /// Restore differing files from the store.
        #[arg(long)]
        repair: bool,
        /// With --repair: first put back the store blobs of this installed package that are
        /// missing or damaged, from its package file (verified against the root's keys).
        #[arg(long, value_name = "PKG", requires = "repair")]
        from: Vec<PathBuf>,
    },
    /// Delete store blobs no installed package references.
    Cleanup {
        /// First make the active state permanent: superseded packages can no longer be uninstalled.
        /// Asks first on a terminal; elsewhere needs --yes.
        #[arg(long)]
        reset_base: bool,
        /// Make the active state permanent without asking.
        #[arg(long, short = 'y', requires = "reset_base")]
        yes: bool,
    },
    /// The keys trusted to sign packages.
    Trust {
        /// What to do.
        #[command(subcommand)]
        what: TrustCmd,
    },
    /// Roll back an interrupted servicing operation.
    Recover,
    /// Subscribe the root to an update channel: the TUF repository of packages at URL (http://,
    /// https://, or file:// for a repository copied to media), trusting ROOT.json, its initial root
    /// metadata from the vendor. Replaces an earlier subscription.
    #[cfg(feature = "channel")]
    Subscribe {
        /// The repository: the directory holding metadata/ and targets/.
        url: String,
        /// The repository's root.json to pin (the vendor publishes it beside the repository).
        #[arg(long, value_name = "ROOT.json")]
        root_json: PathBuf,
        /// The rollout ring this root joins (e.g. pilot, broad; `prerelease` opts into prerelease
        /// packages) [default: the ring it had, else broad].
        #[arg(long, value_name = "RING")]
        ring: Option<String>,
    },
    /// Show or change this root's rollout settings: its ring, a deferral of every package by N days,
    /// a pause of automatic installs until a date, packages approved by hand.
    #[cfg(feature = "channel")]
    Rollout {
        /// Join this ring.
        #[arg(long, value_name = "RING")]
        ring: Option<String>,
        /// Put off every package's eligibility by N days.
        #[arg(long, value_name = "N")]
        defer_days: Option<u32>,
        /// Pause automatic installs until TIME (RFC 3339, e.g. 2027-01-15T00:00:00Z).
        #[arg(long, value_name = "TIME", conflicts_with = "resume")]
        pause_until: Option<String>,
        /// Lift the pause.
        #[arg(long)]
        resume: bool,
        /// Approve a package by hand: eligible at once on this root (never past a vendor's pause or halt).
        #[arg(long, value_name = "ID")]
        approve: Vec<String>,
        /// Withdraw a hand approval.
        #[arg(long, value_name = "ID")]
        unapprove: Vec<String>,
    },
    /// Forget the update channel subscription and its state.
    #[cfg(feature = "channel")]
    Unsubscribe,
    /// Check the update channel (every TUF check) and say which packages apply to this root, in
    /// install order, and why each other one does not. Installs nothing.
    #[cfg(feature = "channel")]
    Scan {
        /// What to ask for.
        #[command(flatten)]
        opts: ChannelOpts,
    },
    /// Scan, then download and install each offered package in order, as `install` does (one
    /// transaction each; stops at the first failure).
    #[cfg(feature = "channel")]
    Update {
        /// What to ask for.
        #[command(flatten)]
        opts: ChannelOpts,
        /// Put the packages' components on LDR (as for install): `qfe` or `<BASELINE>qfe`.
        #[arg(long, value_name = "QFE|<BASELINE>QFE")]
        branch: Option<String>,
        /// Automatic mode, for a scheduled job: the vendor's rollout policy decides — only packages this
        /// root is eligible for now are installed, halted ones are uninstalled, prereleases never (unless
        /// the root's ring is `prerelease`); expired metadata is never accepted.
        #[arg(long, conflicts_with_all = ["allow_expired", "allow_prerelease", "hotfixes"])]
        auto: bool,
    },
    /// Write man pages (DIR/man1/) and shell completions (DIR/completions/) for hotfix and its
    /// self-contained installers.
    GenerateDocs {
        /// The output directory.
        dir: PathBuf,
    },
}

/// What `scan` and `update` ask the channel for.
#[cfg(feature = "channel")]
#[derive(Args, Clone, Debug, Default)]
pub struct ChannelOpts {
    /// Also offer this hotfix (hotfixes are offered only by id); repeatable, any case.
    #[arg(long = "hotfix", value_name = "ID")]
    pub hotfixes: Vec<String>,
    /// Offer and install prerelease packages too.
    #[arg(long)]
    pub allow_prerelease: bool,
    /// Accept metadata past its expiry (a repository on offline media whose timestamp could not be
    /// re-signed). Every other check still applies; the override is logged.
    #[arg(long)]
    pub allow_expired: bool,
}

/// `hotfix policy …`.
#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Force LDR on every component, or let the servicing rule decide.
    Branch {
        /// `ldr` or `auto`.
        #[arg(value_enum)]
        value: PolicyArg,
    },
}

/// `hotfix trust …`.
#[derive(Subcommand, Debug)]
pub enum TrustCmd {
    /// Trust a public key (SPKI PEM).
    Add {
        /// The key file.
        key: PathBuf,
    },
    /// List the trusted keys.
    List,
    /// Stop trusting a key, by name or key id.
    Remove {
        /// The key's name or id.
        key: String,
    },
}

/// The name the installer's command line has in generated documentation.
pub const INSTALLER_NAME: &str = "hotfix-installer";

/// A self-contained installer: the `hotfix` runtime followed by one signed package, which
/// it installs.
///
/// Every action verifies the whole file first — the runtime's own bytes included — with the
/// keys the root trusts (or --trust keys for --extract). Run with no switch, it only says
/// what it is and what installing it would do on the root (`--what-if`). It installs when
/// told to run unattended or how: /quiet, /passive, /norestart, /forcerestart, /log:FILE,
/// /B:…, --allow-prerelease or --install. /uninstall removes its package; /extract:DIR
/// unpacks it.
#[derive(Parser, Debug)]
#[command(name = INSTALLER_NAME, version, after_help = switches::help_text())]
pub struct InstallerCli {
    /// Options of every action.
    #[command(flatten)]
    pub common: Common,
    /// Install the package (implied by /quiet, /passive, /norestart, /forcerestart, /log:FILE, /B:… and
    /// --allow-prerelease).
    #[arg(long, conflicts_with_all = ["uninstall", "extract", "what_if", "reinstall"])]
    pub install: bool,
    /// What to do with the package.
    #[command(flatten)]
    pub opts: PackageOpts,
}
