//! `hotfix --json`: the output of every command as data (README "JSON output"). Each run
//! prints one [`hotfix_schema::output`] envelope — `schema`, the command's fields,
//! `exit_code`, or an `error` object with its class. [`schemas`] gives the JSON Schema of
//! each command's output; they are committed in `schema/json/hotfix/` and checked against
//! these types by the test suite (`UPDATE_SCHEMA=1` regenerates them).

use hotfix_schema::output::{Message, schema_text};
use schemars::JsonSchema;
use serde::Serialize;

use super::docs::Generated;
use super::installer::WhatIfView;
use crate::ops::init::{InitView, TrustView};
use crate::ops::maintain::{CheckReport, CleanupReport};
use crate::ops::owner::{FilesView, OwnerView};
use crate::ops::package::ExtractView;
use crate::ops::view::{ListView, PackageDetail, QueryView, StatusView};
use crate::report::ChangeReport;

/// What `install PKG` (and a self-contained installer) prints, by action.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum PackageOutput {
    /// Installed or uninstalled (`/uninstall`).
    Change(Box<ChangeReport>),
    /// `--what-if`, and an installer run with no switch.
    WhatIf(Box<WhatIfView>),
    /// `--extract DIR`.
    Extract(Box<ExtractView>),
    /// `--reinstall`.
    Reinstall(Box<CheckReport>),
    /// An installer run with no switch that was told not to install.
    Message(Message),
}

/// What `list` prints.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ListOutput {
    /// `list`: every installed package.
    All(ListView),
    /// `list ID`: one package in detail.
    One(Box<PackageDetail>),
}

/// What `trust` prints.
#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum TrustOutput {
    /// `trust list`.
    List(TrustView),
    /// `trust add`, `trust remove`.
    Message(Message),
}

/// The JSON Schema of every command's `--json` output, by file name (without
/// `.schema.json`): `usage` is the output of `--help`, `--version` and a command line that
/// does not parse.
pub fn schemas() -> Vec<(&'static str, String)> {
    vec![
        ("init", schema_text::<InitView>("hotfix init --json")),
        ("install", schema_text::<PackageOutput>("hotfix install --json (and a self-contained installer's --json)")),
        ("uninstall", schema_text::<ChangeReport>("hotfix uninstall --json")),
        ("list", schema_text::<ListOutput>("hotfix list [ID] --json")),
        ("owner", schema_text::<OwnerView>("hotfix owner PATH --json")),
        ("files", schema_text::<FilesView>("hotfix files ID|COMPONENT --json")),
        ("status", schema_text::<StatusView>("hotfix status --json")),
        ("query", schema_text::<QueryView>("hotfix query --json")),
        ("policy", schema_text::<ChangeReport>("hotfix policy --json")),
        ("check", schema_text::<CheckReport>("hotfix check --json")),
        ("cleanup", schema_text::<CleanupReport>("hotfix cleanup --json")),
        ("trust", schema_text::<TrustOutput>("hotfix trust --json")),
        ("recover", schema_text::<Message>("hotfix recover --json")),
        ("generate-docs", schema_text::<Generated>("hotfix generate-docs --json")),
        #[cfg(feature = "channel")]
        ("subscribe", schema_text::<crate::ops::channel::SubscribeView>("hotfix subscribe URL --json")),
        #[cfg(feature = "channel")]
        ("rollout", schema_text::<crate::ops::channel::SettingsView>("hotfix rollout --json")),
        #[cfg(feature = "channel")]
        ("unsubscribe", schema_text::<Message>("hotfix unsubscribe --json")),
        #[cfg(feature = "channel")]
        ("scan", schema_text::<crate::ops::channel::ScanView>("hotfix scan --json")),
        #[cfg(feature = "channel")]
        ("update", schema_text::<crate::ops::channel::UpdateView>("hotfix update --json")),
        ("usage", schema_text::<Message>("hotfix --json --help, --version, or a command line that does not parse")),
    ]
}
