//! Publishing with delegated roles (issue #15): the targets role delegates
//!
//! - `rollout` the names `rollout-*` only: it signs the rollout policy
//!   ([`crate::rollout::Policy`], as the custom metadata of the target
//!   `rollout-policy.json`) and can schedule, pause or halt packages, never add one — a
//!   client takes packages only from the top-level targets and the prerelease role, and
//!   takes from the rollout role nothing but the policy;
//! - `prerelease` the names `prerelease-*` only: prerelease packages are listed there, as
//!   `prerelease-<ID>.pkg`, signed by the prerelease key, and automatic mode never looks
//!   there unless the root opted into the prerelease ring.
//!
//! Each change signs the delegated role, then snapshot and timestamp; the top-level targets
//! are re-signed only when a delegation is added.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use tough::TargetName;
use tough::editor::RepositoryEditor;
use tough::editor::targets::TargetsEditor;
use tough::schema::{PathPattern, PathSet, Target};

use crate::error::{Error, Result};
use crate::meta::{CUSTOM_KEY, PackageMeta};
use crate::repo::{Expiries, keys, load_own_for, next_versions, nz, runtime, set_next_versions};
use crate::rollout::{POLICY_KEY, POLICY_TARGET, PRERELEASE_ROLE, Policy, ROLLOUT_ROLE};

/// A role the targets role delegates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delegated {
    /// Signs the rollout policy, as `rollout-policy.json`.
    Rollout,
    /// Lists prerelease packages, as `prerelease-<ID>.pkg`.
    Prerelease,
}

impl Delegated {
    /// The role's name.
    pub fn name(self) -> &'static str {
        match self {
            Delegated::Rollout => ROLLOUT_ROLE,
            Delegated::Prerelease => PRERELEASE_ROLE,
        }
    }

    /// The only path pattern it is trusted for.
    pub fn pattern(self) -> String {
        format!("{}-*", self.name())
    }
}

/// The keys of the roles a change signs with.
#[derive(Clone, Debug)]
pub struct ChangeKeys<'a> {
    /// The targets keys (only when a delegation is added; empty otherwise).
    pub targets: &'a [PathBuf],
    /// The delegated role's key.
    pub role: &'a Path,
    /// The snapshot keys.
    pub snapshot: &'a [PathBuf],
    /// The timestamp keys.
    pub timestamp: &'a [PathBuf],
}

impl ChangeKeys<'_> {
    fn with(&self, targets: bool) -> Vec<&Path> {
        let mut all: Vec<&Path> = Vec::new();
        if targets {
            all.extend(self.targets.iter().map(PathBuf::as_path));
        }
        all.push(self.role);
        all.extend(self.snapshot.iter().map(PathBuf::as_path));
        all.extend(self.timestamp.iter().map(PathBuf::as_path));
        all
    }
}

/// Adds the delegation `role` (signed with `keys.role`, threshold 1, terminating) to the
/// top-level targets, signed with `keys.targets`. Refused if it is there already.
pub fn delegate(dir: &Path, role: Delegated, keys_: &ChangeKeys<'_>, exp: &Expiries) -> Result<()> {
    runtime(dir)?.block_on(async {
        let tough_err = |e| Error::from_tough(dir.display().to_string(), e);
        if keys_.targets.is_empty() {
            return Err(Error::Refused {
                what: dir.display().to_string(),
                msg: "adding a delegation needs the targets key".into(),
            });
        }
        let (repo, root_path) = load_own_for(dir).await?;
        if repo.delegated_role(role.name()).is_some() {
            return Err(Error::Refused {
                what: dir.display().to_string(),
                msg: format!("the {} role is delegated already", role.name()),
            });
        }
        let targets_version = repo.targets().signed.version.get() + 1;
        let next = next_versions(&repo);
        // The editor starts on the top-level targets, which the delegation changes.
        let mut editor = RepositoryEditor::from_repo(&root_path, repo).await.map_err(tough_err)?;
        let pattern = PathPattern::new(role.pattern())
            .map_err(|e| Error::Refused { what: role.pattern(), msg: e.to_string() })?;
        editor
            .delegate_role(
                role.name(),
                &keys(&[keys_.role]),
                PathSet::Paths(vec![pattern]),
                true,
                NonZeroU64::MIN,
                exp.targets,
                NonZeroU64::MIN,
            )
            .await
            .map_err(tough_err)?;
        editor.targets_version(nz(targets_version)).map_err(tough_err)?;
        editor.targets_expires(exp.targets).map_err(tough_err)?;
        set_next_versions(&mut editor, next, exp);
        let signed = editor.sign(&keys(&keys_.with(true))).await.map_err(tough_err)?;
        signed.write(dir.join("metadata")).await.map_err(tough_err)
    })
}

/// Lists `file` as target `name` of the delegated `role` (replacing a target of that name),
/// with `custom` metadata under `custom_key`, signed with the role's key, then snapshot
/// and timestamp. The file is copied to `targets/` first.
pub fn set_delegated_target(
    dir: &Path,
    role: Delegated,
    name: &str,
    file: &Path,
    custom: (&str, serde_json::Value),
    keys_: &ChangeKeys<'_>,
    exp: &Expiries,
) -> Result<()> {
    if name.contains('/') || !in_role_path(role, name) {
        return Err(Error::Refused {
            what: name.to_string(),
            msg: format!("the {} role lists only names {}", role.name(), role.pattern()),
        });
    }
    runtime(dir)?.block_on(async {
        let tough_err = |e| Error::from_tough(dir.display().to_string(), e);
        let (repo, _) = load_own_for(dir).await?;
        let Some(current) = repo.delegated_role(role.name()) else {
            return Err(Error::Refused {
                what: dir.display().to_string(),
                msg: format!("the {} role is not delegated yet (pkgtool repo delegate)", role.name()),
            });
        };
        let role_version = current.targets.as_ref().map_or(0, |t| t.signed.version.get()) + 1;
        let next = next_versions(&repo);
        let target_name = TargetName::new(name).map_err(|e| Error::from_tough(name.to_string(), e))?;
        let mut target = Target::from_path(file)
            .await
            .map_err(|e| Error::Refused { what: file.display().to_string(), msg: e.to_string() })?;
        target.custom.insert(custom.0.to_string(), custom.1);
        let sha = hex(&target.hashes.sha256);
        // The role's new metadata, signed with its key alone, staged outside metadata/.
        let mut role_editor = TargetsEditor::from_repo(repo, role.name()).map_err(tough_err)?;
        role_editor.add_target(target_name.clone(), target).map_err(tough_err)?;
        role_editor.version(nz(role_version)).expires(exp.targets);
        let signed_role = role_editor.sign(&keys(&[keys_.role])).await.map_err(tough_err)?;
        let staging = tempfile::Builder::new().prefix(".staging.").tempdir_in(dir).map_err(Error::io(dir))?;
        signed_role.write(staging.path(), false).await.map_err(tough_err)?;
        // The file first (under its hash, as consistent snapshots name it), then the
        // metadata that lists it, timestamp.json last.
        // tough's client fetches `targets/<sha256>.<name>` (the whole name): names have no '/'.
        let to_dir = dir.join("targets");
        let dest = to_dir.join(format!("{sha}.{name}"));
        // Named by its hash: an existing file is kept only if it has that hash; a new one is
        // written under a temporary name, flushed, then renamed, so that a server never
        // serves a torn copy.
        let intact = std::fs::read(&dest).is_ok_and(|b| hex(&<sha2::Sha256 as sha2::Digest>::digest(&b)) == sha);
        if !intact {
            let tmp = tempfile::Builder::new().prefix(".tmp.").tempfile_in(&to_dir).map_err(Error::io(&to_dir))?;
            std::fs::copy(file, tmp.path()).map_err(Error::io(tmp.path()))?;
            tmp.as_file().sync_all().map_err(Error::io(tmp.path()))?;
            tmp.persist(&dest).map_err(|e| Error::Io { path: dest.clone(), source: e.error })?;
        }
        let (repo, root_path) = load_own_for(dir).await?;
        let mut editor = RepositoryEditor::from_repo(&root_path, repo).await.map_err(tough_err)?;
        let staged = url::Url::from_directory_path(staging.path()).map_err(|()| Error::Refused {
            what: staging.path().display().to_string(),
            msg: "not a directory URL".into(),
        })?;
        editor.update_delegated_targets(role.name(), staged.as_str()).await.map_err(tough_err)?;
        set_next_versions(&mut editor, next, exp);
        let mut online: Vec<&Path> = keys_.snapshot.iter().map(PathBuf::as_path).collect();
        online.extend(keys_.timestamp.iter().map(PathBuf::as_path));
        let signed = editor.sign(&keys(&online)).await.map_err(tough_err)?;
        signed.write(dir.join("metadata")).await.map_err(tough_err)
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Signs `policy` as the rollout role's `rollout-policy.json`.
pub fn set_policy(dir: &Path, policy: &Policy, keys_: &ChangeKeys<'_>, exp: &Expiries) -> Result<()> {
    let text =
        serde_json::to_vec_pretty(policy).map_err(|e| Error::Refused { what: "policy".into(), msg: e.to_string() })?;
    let tmp = tempfile::Builder::new().prefix("policy.").tempfile_in(dir).map_err(Error::io(dir))?;
    std::fs::write(tmp.path(), &text).map_err(Error::io(tmp.path()))?;
    let value =
        serde_json::to_value(policy).map_err(|e| Error::Refused { what: "policy".into(), msg: e.to_string() })?;
    set_delegated_target(dir, Delegated::Rollout, POLICY_TARGET, tmp.path(), (POLICY_KEY, value), keys_, exp)
}

/// Publishes the prerelease package `pkg` (its metadata from the authenticated manifest)
/// as `prerelease-<ID>.pkg` of the prerelease role.
pub fn add_prerelease(
    dir: &Path,
    pkg: &Path,
    meta: PackageMeta,
    keys_: &ChangeKeys<'_>,
    exp: &Expiries,
) -> Result<String> {
    let name = format!("{}-{}.pkg", PRERELEASE_ROLE, meta.id);
    let value = serde_json::to_value(&meta).map_err(|e| Error::Refused { what: name.clone(), msg: e.to_string() })?;
    set_delegated_target(dir, Delegated::Prerelease, &name, pkg, (CUSTOM_KEY, value), keys_, exp)?;
    Ok(name)
}

/// The rollout policy the repository in `dir` signs now, if any (as its vendor reads it,
/// expiry not enforced).
pub fn current_policy(dir: &Path) -> Result<Option<Policy>> {
    let repo = runtime(dir)?.block_on(load_own_for(dir))?.0;
    policy(&repo)
}

/// Whether `name` is a target the delegation `role` may list (its path pattern).
pub fn in_role_path(role: Delegated, name: &str) -> bool {
    name.strip_prefix(role.name()).and_then(|r| r.strip_prefix('-')).is_some_and(|r| !r.is_empty() && !r.contains('/'))
}

/// The prerelease packages of a loaded repository: the targets the prerelease role lists
/// as `prerelease-*` whose metadata parses and says channel prerelease — nothing else
/// (an entry that does not is skipped: the prerelease key can neither publish a release
/// nor stop a scan with a malformed entry).
pub fn prerelease_targets(repo: &tough::Repository) -> Vec<crate::select::Candidate> {
    let Some(role) = repo.delegated_role(PRERELEASE_ROLE) else { return Vec::new() };
    let Some(t) = &role.targets else { return Vec::new() };
    t.signed
        .targets
        .iter()
        .filter(|(name, _)| in_role_path(Delegated::Prerelease, name.raw()))
        .filter_map(|(name, target)| crate::repo::candidate(name.raw(), target).ok())
        .filter(|c| c.meta.channel == hotfix_schema::Channel::Prerelease)
        .collect()
}

/// The rollout policy of a loaded repository: `Ok(None)` when the repository delegates no
/// rollout role (it is unstaged); an empty policy (nothing scheduled) while the rollout role
/// signed none yet. A rollout role that is delegated but whose metadata did not load (left
/// out of the snapshot) is a trust failure, never "unstaged": a staged repository fails
/// closed. A policy that does not parse is an error naming it.
pub fn policy(repo: &tough::Repository) -> Result<Option<Policy>> {
    let Some(role) = repo.delegated_role(ROLLOUT_ROLE) else { return Ok(None) };
    let Some(t) = &role.targets else {
        return Err(Error::Trust {
            what: format!("the {ROLLOUT_ROLE} role"),
            source: "delegated by targets, but its metadata is not in the snapshot".into(),
        });
    };
    let Some((_, target)) = t.signed.targets.iter().find(|(n, _)| n.raw() == POLICY_TARGET) else {
        return Ok(Some(Policy::default()));
    };
    let value = target.custom.get(POLICY_KEY).ok_or_else(|| Error::Refused {
        what: format!("target {POLICY_TARGET}"),
        msg: format!("no \"{POLICY_KEY}\" custom metadata"),
    })?;
    let p: Policy = serde_json::from_value(value.clone())
        .map_err(|e| Error::Refused { what: format!("target {POLICY_TARGET}"), msg: format!("bad policy: {e}") })?;
    Ok(Some(p))
}
