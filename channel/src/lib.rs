//! The update channel (issue #14): packages published as targets of a TUF repository of
//! static files, and the choice of which of them a root is offered.
//!
//! - [`meta`] — the custom metadata each package target carries (id, kind, product,
//!   baselines, channel, fixes, supersedes), taken from the package's authenticated manifest;
//! - [`select`] — which targets apply to a root and why the others were left out, a pure
//!   function over data with no network and no file system.
//!
//! Nothing here is linked into the self-contained installer stub: the runtime depends on
//! this crate only through its `channel` feature.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod error;
pub mod meta;
pub mod repo;
pub mod roles;
pub mod rollout;
pub mod rotate;
pub mod select;

pub use error::Error;

/// The JSON Schemas of what the channel signs beside the TUF metadata itself, by file name
/// (without `.schema.json`): a package target's `custom.hotfix` ([`meta::PackageMeta`]) and
/// the rollout role's policy, `custom.rollout` of `rollout-policy.json`
/// ([`rollout::Policy`]). Committed in `schema/json/channel/`, checked by the test suite.
pub fn schemas() -> Vec<(&'static str, String)> {
    fn text<T: schemars::JsonSchema>(title: &str) -> String {
        let mut schema = schemars::schema_for!(T);
        schema.insert("title".into(), serde_json::Value::String(title.to_string()));
        hotfix_schema::output::to_text(&schema)
    }
    vec![
        ("package-target", text::<meta::PackageMeta>("custom.hotfix of a package target")),
        ("rollout-policy", text::<rollout::Policy>("custom.rollout of the rollout role's rollout-policy.json")),
    ]
}
