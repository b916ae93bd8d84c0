//! The build spec (`SPEC.toml`, DESIGN.md "Package spec"): parsed with line numbers, checked
//! against the kind rules, and resolved to the payload files on disk.
//!
//! Every error names the spec file and, where it can, the line — or the payload file that
//! is wrong (a symlink, a device, a name that is not a safe path).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hotfix_schema::{BaselineDecl, Branch, Channel, Kind, Mode, Name, RelPath, Version};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Result};

/// A spec, checked and resolved.
#[derive(Debug)]
pub struct Spec {
    /// The spec file.
    pub path: PathBuf,
    /// Package identity.
    pub id: Name,
    /// Package kind.
    pub kind: Kind,
    /// Product.
    pub product: Name,
    /// Title.
    pub title: String,
    /// Channel.
    pub channel: Channel,
    /// The baseline a baseline package establishes.
    pub baseline: Option<BaselineDecl>,
    /// Variants in spec order.
    pub variants: Vec<SpecVariant>,
}

/// One variant of a spec with its payload files.
#[derive(Debug)]
pub struct SpecVariant {
    /// 1-based line of the variant in the spec.
    pub line: usize,
    /// Component.
    pub component: Name,
    /// Baseline.
    pub baseline: Name,
    /// Branch (none in baseline packages).
    pub branch: Option<Branch>,
    /// Version, when the spec gives one; otherwise it comes from the binaries.
    pub version: Option<Version>,
    /// Cumulative fix list.
    pub fixes: Vec<Name>,
    /// Whether installing or removing it needs a restart.
    pub restart: bool,
    /// The payload directory.
    pub dir: PathBuf,
    /// Payload files, sorted by path.
    pub files: Vec<PayloadFile>,
}

/// One payload file.
#[derive(Debug, Clone)]
pub struct PayloadFile {
    /// Where it goes below the root.
    pub path: RelPath,
    /// Where it is on disk now.
    pub source: PathBuf,
    /// Permission bits.
    pub mode: Mode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    package: RawPackage,
    #[serde(default)]
    variant: Vec<Spanned<RawVariant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    id: Spanned<String>,
    kind: Spanned<String>,
    product: Spanned<String>,
    title: Spanned<String>,
    channel: Option<Spanned<String>>,
    baseline: Option<Spanned<RawBaseline>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBaseline {
    name: String,
    level: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVariant {
    component: Spanned<String>,
    baseline: Option<Spanned<String>>,
    branch: Option<Spanned<String>>,
    version: Option<Spanned<String>>,
    fixes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    restart: bool,
    dir: Spanned<String>,
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text.get(..offset).map_or(1, |s| s.matches('\n').count() + 1)
    }
    fn err<T>(&self, span: std::ops::Range<usize>, msg: impl Into<String>) -> Result<T> {
        Err(Error::Spec { file: self.path.to_path_buf(), line: Some(self.line(span.start)), msg: msg.into() })
    }
    fn name(&self, s: &Spanned<String>, what: &str) -> Result<Name> {
        Name::new(s.get_ref()).or_else(|e| self.err(s.span(), format!("{what}: {e}")))
    }
}

/// Reads and checks a spec and walks its payload directories.
pub fn load(path: &Path) -> Result<Spec> {
    let text = fs::read_to_string(path).map_err(Error::io(path))?;
    let cx = Ctx { path, text: &text };
    let raw: RawSpec = toml::from_str(&text).map_err(|e| Error::Spec {
        file: path.to_path_buf(),
        line: e.span().map(|s| cx.line(s.start)),
        msg: e.message().trim().to_string(),
    })?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let p = &raw.package;

    let id = cx.name(&p.id, "package.id")?;
    let product = cx.name(&p.product, "package.product")?;
    let kind = match p.kind.get_ref().as_str() {
        "baseline" => Kind::Baseline,
        "update" => Kind::Update,
        "hotfix" => Kind::Hotfix,
        other => return cx.err(p.kind.span(), format!("package.kind {other:?} is not baseline, update or hotfix")),
    };
    let channel = match p.channel.as_ref().map(|c| (c.get_ref().as_str(), c.span())) {
        None | Some(("release", _)) => Channel::Release,
        Some(("prerelease", _)) => Channel::Prerelease,
        Some((other, span)) => return cx.err(span, format!("package.channel {other:?} is not release or prerelease")),
    };
    let title = p.title.get_ref().trim().to_string();
    if title.is_empty() || title.len() > 1024 || title.chars().any(char::is_control) {
        return cx.err(p.title.span(), "package.title must be 1 to 1024 printable bytes");
    }
    let baseline = match (&p.baseline, kind) {
        (Some(b), Kind::Baseline) => {
            let name = Name::new(&b.get_ref().name).or_else(|e| cx.err(b.span(), format!("package.baseline: {e}")))?;
            Some(BaselineDecl { name, level: b.get_ref().level })
        }
        (None, Kind::Baseline) => {
            return cx.err(
                p.kind.span(),
                "a baseline package declares its baseline: baseline = { name = \"SP1\", level = 1 }",
            );
        }
        (Some(b), _) => return cx.err(b.span(), format!("package.baseline is only for baseline packages, not {kind}")),
        (None, _) => None,
    };
    if raw.variant.is_empty() {
        return cx.err(p.id.span(), "the spec has no [[variant]]");
    }

    let mut variants = Vec::new();
    let mut seen: BTreeMap<(Name, Name, Option<Branch>), usize> = BTreeMap::new();
    for sv in &raw.variant {
        let v = sv.get_ref();
        let line = cx.line(sv.span().start);
        let component = cx.name(&v.component, "component")?;
        let vbaseline = match (&v.baseline, &baseline) {
            (Some(b), Some(decl)) if b.get_ref() != decl.name.as_str() => {
                return cx
                    .err(b.span(), format!("a baseline package's variants are for its own baseline {}", decl.name));
            }
            (Some(b), _) => cx.name(b, "baseline")?,
            (None, Some(decl)) => decl.name.clone(),
            (None, None) => {
                return cx.err(v.component.span(), "variant needs baseline = \"RTM\" (or another baseline)");
            }
        };
        let branch = match (&v.branch, kind) {
            (Some(b), Kind::Baseline) => return cx.err(b.span(), "variants of a baseline package have no branch"),
            (None, Kind::Baseline) => None,
            (None, _) => return cx.err(v.component.span(), "variant needs branch = \"gdr\" or \"ldr\""),
            (Some(b), _) => match b.get_ref().as_str() {
                "gdr" => {
                    if kind == Kind::Hotfix {
                        return cx.err(b.span(), "a hotfix carries only ldr variants; this one says gdr");
                    }
                    Some(Branch::Gdr)
                }
                "ldr" => Some(Branch::Ldr),
                other => return cx.err(b.span(), format!("branch {other:?} is not gdr or ldr")),
            },
        };
        let version = match &v.version {
            Some(ver) => Some(Version::parse(ver.get_ref()).or_else(|e| cx.err(ver.span(), e.to_string()))?),
            None => None,
        };
        let mut fixes = Vec::new();
        if let Some(list) = &v.fixes {
            for f in list.get_ref() {
                let fix = cx.name(f, "fix")?;
                if fixes.contains(&fix) {
                    return cx.err(f.span(), format!("fix {fix} is listed twice"));
                }
                fixes.push(fix);
            }
        }
        let key = (component.clone(), vbaseline.clone(), branch);
        if let Some(first) = seen.insert(key, line) {
            return cx.err(
                v.component.span(),
                format!(
                    "duplicate variant: {component} at {vbaseline} {} is also declared on line {first}",
                    branch.map_or("", Branch::as_str)
                ),
            );
        }
        let dir = base_dir.join(v.dir.get_ref());
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return cx.err(v.dir.span(), format!("dir {} is not a directory", dir.display())),
            Err(e) => return cx.err(v.dir.span(), format!("dir {}: {e}", dir.display())),
        }
        let mut files = Vec::new();
        walk(&dir, &dir, &mut files)?;
        if files.is_empty() {
            return cx.err(v.dir.span(), format!("empty variant: dir {} holds no files", dir.display()));
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        variants.push(SpecVariant {
            line,
            component,
            baseline: vbaseline,
            branch,
            version,
            fixes,
            restart: v.restart,
            dir,
            files,
        });
    }

    let spec = Spec { path: path.to_path_buf(), id, kind, product, title, channel, baseline, variants };
    check_kind_rules(&spec)?;
    check_owners(&spec)?;
    check_file_and_directory(&spec)?;
    Ok(spec)
}

/// An update ships gdr and ldr for everything it covers, and every gdr fix is also in ldr.
fn check_kind_rules(spec: &Spec) -> Result<()> {
    if spec.kind != Kind::Update {
        return Ok(());
    }
    let err = |line: usize, msg: String| Err(Error::Spec { file: spec.path.clone(), line: Some(line), msg });
    for v in &spec.variants {
        let other = if v.branch == Some(Branch::Gdr) { Branch::Ldr } else { Branch::Gdr };
        let Some(pair) = spec
            .variants
            .iter()
            .find(|o| o.component == v.component && o.baseline == v.baseline && o.branch == Some(other))
        else {
            return err(
                v.line,
                format!(
                    "update covers {} at {} with only {}; an update ships both gdr and ldr",
                    v.component,
                    v.baseline,
                    v.branch.map_or("", Branch::as_str)
                ),
            );
        };
        if v.branch == Some(Branch::Gdr)
            && let Some(missing) = v.fixes.iter().find(|f| !pair.fixes.contains(f))
        {
            return err(
                pair.line,
                format!(
                    "{} at {}: fix {missing} is in the gdr variant (line {}) but not in this ldr variant; every gdr fix is also in ldr",
                    v.component, v.baseline, v.line
                ),
            );
        }
    }
    Ok(())
}

/// Two components never own one path.
fn check_owners(spec: &Spec) -> Result<()> {
    let mut owner: BTreeMap<&RelPath, (&Name, usize)> = BTreeMap::new();
    for v in &spec.variants {
        for f in &v.files {
            if let Some((other, line)) = owner.insert(&f.path, (&v.component, v.line))
                && other != &v.component
            {
                return Err(Error::Spec {
                    file: spec.path.clone(),
                    line: Some(v.line),
                    msg: format!(
                        "{} ({}) is owned by component {other} (line {line}) and by {}; two components never own one path",
                        f.path,
                        f.source.display(),
                        v.component
                    ),
                });
            }
        }
    }
    Ok(())
}

/// No path is a file of one component and a directory above a file of another component
/// for the same baseline (FORMAT.md §4.3 rule 9): both can be active in one root, and a
/// root cannot hold both. (Within one payload directory the file system already makes
/// this impossible; variants of one component may turn a file into a directory.)
fn check_file_and_directory(spec: &Spec) -> Result<()> {
    let mut at: BTreeMap<(&Name, &str), (&SpecVariant, &PayloadFile)> = BTreeMap::new();
    for v in &spec.variants {
        for f in &v.files {
            at.insert((&v.baseline, f.path.as_str()), (v, f));
        }
    }
    for v in &spec.variants {
        for f in &v.files {
            let p = f.path.as_str();
            for (i, _) in p.match_indices('/') {
                let Some((w, g)) = at.get(&(&v.baseline, &p[..i])).filter(|(w, _)| w.component != v.component) else {
                    continue;
                };
                return Err(Error::Spec {
                    file: spec.path.clone(),
                    line: Some(v.line),
                    msg: format!(
                        "{} ({}, component {}, line {}) is a file, and a directory of {} ({}, component {}) at baseline {}; \
                         a root cannot hold both",
                        g.path,
                        g.source.display(),
                        w.component,
                        w.line,
                        f.path,
                        f.source.display(),
                        v.component,
                        v.baseline
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Collects the regular files below `dir`; anything else is an error naming the file.
fn walk(root: &Path, dir: &Path, out: &mut Vec<PayloadFile>) -> Result<()> {
    let mut entries: Vec<_> =
        fs::read_dir(dir).map_err(Error::io(dir))?.collect::<std::io::Result<_>>().map_err(Error::io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(Error::io(&path))?;
        let ft = meta.file_type();
        let payload_err = |msg: &str| Err(Error::Spec { file: path.clone(), line: None, msg: msg.to_string() });
        if ft.is_symlink() {
            return payload_err("symbolic link in a payload; packages carry regular files only");
        }
        if ft.is_dir() {
            walk(root, &path, out)?;
            continue;
        }
        if ft.is_block_device() || ft.is_char_device() || ft.is_fifo() || ft.is_socket() || !ft.is_file() {
            return payload_err("device, pipe or socket in a payload; packages carry regular files only");
        }
        let rel = path.strip_prefix(root).unwrap_or(&path);
        let Some(rel_str) = rel.to_str() else {
            return payload_err("file name is not UTF-8");
        };
        let rel_path = match RelPath::new(rel_str) {
            Ok(p) => p,
            Err(e) => return payload_err(&e.to_string()),
        };
        let mode = Mode::from_permissions(meta.permissions().mode());
        out.push(PayloadFile { path: rel_path, source: path, mode });
    }
    Ok(())
}
