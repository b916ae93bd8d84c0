//! The update channel's end-to-end fixture: a vendor's repository made with `pkgtool repo`,
//! served by nginx on loopback or read from a directory, and roots subscribed to it.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::nginx::Nginx;
use crate::root::{Kit, hotfix};
use crate::run::pkgtool;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The four TUF roles a repository starts with.
pub const ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Makes one key per role in `dir` (`ROLE.key`, `ROLE.pub`) with `pkgtool keygen`.
pub fn make_role_keys(dir: &Path) {
    fs::create_dir_all(dir).expect("the keys directory");
    for role in ROLES {
        pkgtool(["-q", "keygen", s(&dir.join(role))]).expect_code(0);
    }
}

/// The secret key file of `role` in `dir`.
pub fn role_key(dir: &Path, role: &str) -> String {
    s(&dir.join(format!("{role}.key"))).to_string()
}

/// The online roles' key arguments: `--targets-key K --snapshot-key K --timestamp-key K`.
pub fn online_key_args(dir: &Path) -> Vec<String> {
    ["targets", "snapshot", "timestamp"].iter().flat_map(|r| [format!("--{r}-key"), role_key(dir, r)]).collect()
}

/// `repo init REPO --root-key … --targets-key …` with the keys in `dir`.
pub fn repo_init_args(repo: &Path, dir: &Path) -> Vec<String> {
    let mut args = vec!["repo".to_string(), "init".into(), s(repo).into(), "--root-key".into(), role_key(dir, "root")];
    args.extend(online_key_args(dir));
    args
}

/// A vendor's repository and a root subscribed to it.
pub struct Channel {
    /// The kit: workspace, package signing key.
    pub kit: Kit,
    /// The repository directory.
    pub repo: PathBuf,
    /// The repository's role keys (`ROLE.key`).
    pub keys: PathBuf,
    /// `None`: served from `file://`.
    pub nginx: Option<Nginx>,
}

impl Channel {
    /// A repository served over HTTP by nginx; `None` (the test skips) without nginx.
    pub fn http(case: &str) -> Option<Channel> {
        let c = Channel::init(case);
        let n = Nginx::serve(&c.repo)?;
        Some(Channel { nginx: Some(n), ..c })
    }

    /// A repository read from a directory, as from removable media.
    pub fn media(case: &str) -> Channel {
        Channel::init(case)
    }

    /// A repository in a fresh kit, one key per role, not served yet.
    pub fn init(case: &str) -> Channel {
        let kit = Kit::new(case);
        let keys = kit.path().join("repo-keys");
        make_role_keys(&keys);
        let repo = kit.path().join("repo");
        pkgtool(repo_init_args(&repo, &keys)).expect_code(0);
        Channel { kit, repo, keys, nginx: None }
    }

    /// The secret key file of `role`.
    pub fn key(&self, role: &str) -> String {
        role_key(&self.keys, role)
    }

    /// `--targets-key K --snapshot-key K --timestamp-key K`.
    pub fn online_keys(&self) -> Vec<String> {
        online_key_args(&self.keys)
    }

    pub fn url(&self) -> String {
        match &self.nginx {
            Some(n) => n.url(),
            None => format!("file://{}/", self.repo.display()),
        }
    }

    /// Publishes a package.
    pub fn publish(&self, pkg: &Path) {
        let mut args = vec!["repo".to_string(), "add".into(), s(&self.repo).into(), s(pkg).into()];
        args.extend(["--trust".into(), s(&self.kit.public).into()]);
        args.extend(self.online_keys());
        pkgtool(&args).expect_code(0);
    }

    /// A root with the RTM baseline installed, subscribed to the repository.
    pub fn root(&self, name: &str) -> PathBuf {
        let root = self.kit.root(name);
        hotfix(&root, ["install", s(&self.kit.contoso("rtm"))]).expect_code(0);
        self.subscribe(&root, &self.url());
        root
    }

    pub fn subscribe(&self, root: &Path, url: &str) {
        hotfix(root, ["subscribe", url, "--root-json", s(&self.repo.join("root.json"))]).expect_code(0);
    }

    /// A cumulative update `id` for kernel and SMTP transport on RTM and SP1, GDR and LDR,
    /// carrying every fix KB2..=n (GDR) and KB1..=n (LDR).
    pub fn rollup(&self, n: u32) -> PathBuf {
        let id = format!("KB{n}");
        let gdr: Vec<String> = (2..=n).filter(|k| *k != 3).map(|k| format!("\"KB{k}\"")).collect();
        let ldr: Vec<String> = (1..=n).map(|k| format!("\"KB{k}\"")).collect();
        let mut spec =
            format!("[package]\nid = \"{id}\"\nkind = \"update\"\nproduct = \"contoso\"\ntitle = \"Rollup {n}\"\n");
        let mut files = Vec::new();
        for (base, kv, sv) in [("RTM", "5.2.3790", "8.0.685"), ("SP1", "5.2.3791", "8.1.240")] {
            for (comp, v) in [("kernel", kv), ("smtp-transport", sv)] {
                for (branch, rev, fixes) in [("gdr", n, &gdr), ("ldr", 1000 + n, &ldr)] {
                    let dir = format!("{base}/{branch}/{comp}");
                    spec.push_str(&format!(
                        "\n[[variant]]\ncomponent = \"{comp}\"\nbaseline = \"{base}\"\nbranch = \"{branch}\"\n\
                         version = \"{v}.{rev}\"\nfixes = [{}]\ndir = \"{id}/{dir}\"\n",
                        fixes.join(", ")
                    ));
                    let file = if comp == "kernel" { "bin/kernel.dll" } else { "bin/smtp.dll" };
                    files.push((format!("{dir}/{file}"), format!("{comp} {base} {branch} {v}.{rev} ({id})\n")));
                }
            }
        }
        let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        self.kit.spec(&id, &spec, &files)
    }

    /// The requests nginx logged since the last call.
    pub fn requests_since(&self, seen: &mut usize) -> Vec<crate::nginx::Request> {
        let all = self.nginx.as_ref().map(Nginx::requests).unwrap_or_default();
        let new = all[*seen..].to_vec();
        *seen = all.len();
        new
    }
}

pub fn json(out: &crate::run::Outcome) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", out.stdout, out.stderr))
}

pub fn scan(root: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["scan", "--json"];
    args.extend(extra);
    let out = hotfix(root, &args);
    out.expect_code(0);
    json(&out)
}

pub fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_string()).collect()
}

/// Everything under the root but the channel's own state and the log: what an install
/// writes (live files, store, inventory).
pub fn servicing_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.join(".servicing")];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(".servicing/channel") || rel.starts_with(".servicing/log") || rel == ".servicing/lock" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}
