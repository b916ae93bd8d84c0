//! A change of a few components on a root of many: it reads only their inventory rows, and
//! decides and reports exactly as from the whole root.

use std::fs;

use hotfix_schema::{Kind, Manifest};

use super::{Access, PackageChange, Session, change_transition};
use crate::engine::tests::fixtures::{V, base, hotfix, ldr, manifest_for, name};
use crate::engine::{InstallOptions, Installed, Transition};
use crate::inventory::{Inventory, Reads};
use crate::layout::Layout;
use crate::report::ChangeReport;
use crate::testutil::{Scratch, commit_install};

const COMPONENTS: usize = 300;
const FILES: usize = 4;

fn paths(c: &str, n: usize) -> Vec<String> {
    (0..n).map(|f| format!("{c}/f{f}")).collect()
}

fn with_paths(mut v: V, paths: Vec<String>) -> V {
    v.paths = paths;
    v
}

/// A root at RTM whose baseline has `COMPONENTS` components `c000`… of `FILES` files each.
fn wide_root(case: &str) -> Scratch {
    let dir = Scratch::new(case);
    let layout = Layout::new(dir.path());
    fs::create_dir_all(&layout.servicing).unwrap();
    let mut inv = Inventory::create(&layout.db(), &name("contoso")).unwrap();
    let vs: Vec<V> = (0..COMPONENTS)
        .map(|i| {
            let c = format!("c{i:03}");
            with_paths(base(&c, "RTM", "1.0", &[]), paths(&c, FILES))
        })
        .collect();
    let rtm = manifest_for("contoso", "RTM", Kind::Baseline, Some(("RTM", 0)), &vs);
    commit_install(&mut inv, rtm, InstallOptions::default());
    dir
}

/// HF1: a hotfix for c123 that rewrites its files and adds one.
fn hf1() -> Manifest {
    let mut files = paths("c123", FILES);
    files.push("c123/new".into());
    hotfix("HF1", &[with_paths(ldr("c123", "RTM", "1.1", &["HF1"]), files)])
}

fn report(t: &Transition) -> serde_json::Value {
    serde_json::to_value(ChangeReport::new("op", None, String::new(), t, true)).unwrap()
}

/// The change decided on its components alone, the rows that read, and the same change
/// decided on the whole root.
fn decide(s: &Session, change: PackageChange<'_>) -> (Transition, ChangeReport, Reads, Transition) {
    let before = s.inv.reads();
    let snap = s.snapshot_for(change).unwrap();
    let (snap, t) = s.transition(snap, change).unwrap();
    let r = s.inv.reads();
    let reads = Reads {
        packages: r.packages - before.packages,
        variants: r.variants - before.variants,
        variant_files: r.variant_files - before.variant_files,
        component_names: r.component_names - before.component_names,
        blobs: r.blobs - before.blobs,
        files: r.files - before.files,
        dirs: r.dirs - before.dirs,
    };
    let mut rep = ChangeReport::new("op", None, String::new(), &t, true);
    snap.scope.as_ref().expect("restricted").complete_report(&mut rep);
    let whole = change_transition(&s.snapshot().unwrap(), change).unwrap();
    (t, rep, reads, whole)
}

fn assert_same_plan(part: &Transition, whole: &Transition) {
    assert_eq!(part.plan, whole.plan, "the same writes, removals, relabels and unchanged count");
    assert_eq!(part.changed_components(), whole.changed_components());
}

#[test]
fn installing_a_hotfix_on_a_root_of_many_components_reads_only_its_components_rows() {
    let dir = wide_root("installing_a_hotfix_on_a_root_of_many_components_reads_only_its_components_rows");
    let s = Session::open(dir.path(), "test", Access::Read).unwrap();
    let new = Installed::new(hf1(), InstallOptions::default());
    let (t, rep, reads, whole) = decide(&s, PackageChange::Add(&new));
    assert_eq!(
        reads,
        Reads {
            packages: 1,
            variants: 1,
            variant_files: FILES as u64,
            component_names: COMPONENTS as u64,
            ..Reads::default()
        },
        "the baseline's header and its c123 variant, the names of the other components, and one lookup \
         (no row) for the path HF1 adds"
    );
    assert_eq!(t.before_files.len(), FILES, "the engine saw c123's files only");
    assert_eq!((t.plan.put.len(), t.plan.unchanged), (FILES + 1, COMPONENTS * FILES - FILES));
    assert_same_plan(&t, &whole);
    assert_eq!(serde_json::to_value(&rep).unwrap(), report(&whole), "the same report, unchanged components included");
    assert_eq!(rep.unchanged.len(), COMPONENTS - 1);
}

#[test]
fn uninstalling_a_hotfix_on_a_root_of_many_components_reads_only_its_components_rows() {
    let dir = wide_root("uninstalling_a_hotfix_on_a_root_of_many_components_reads_only_its_components_rows");
    {
        let mut inv = Inventory::open(&Layout::new(dir.path()).db()).unwrap();
        commit_install(&mut inv, hf1(), InstallOptions::default());
    }
    let s = Session::open(dir.path(), "test", Access::Read).unwrap();
    let id = name("HF1");
    let (t, rep, reads, whole) = decide(&s, PackageChange::Remove(&id));
    assert_eq!(reads.packages, 2);
    assert_eq!((reads.variants, reads.variant_files), (2, (FILES + FILES + 1) as u64), "c123's two variants");
    assert_eq!((reads.blobs, reads.files), (0, 0));
    assert_eq!((t.plan.put.len(), t.plan.remove.len()), (FILES, 1));
    assert_same_plan(&t, &whole);
    assert_eq!(serde_json::to_value(&rep).unwrap(), report(&whole));
}

#[test]
fn a_hotfix_taking_a_path_of_another_component_is_refused_as_on_the_whole_root() {
    let dir = wide_root("a_hotfix_taking_a_path_of_another_component_is_refused_as_on_the_whole_root");
    let s = Session::open(dir.path(), "test", Access::Read).unwrap();
    let mut files = paths("c123", FILES);
    files.push("c200/f1".into());
    let m = hotfix("HF2", &[with_paths(ldr("c123", "RTM", "1.1", &["HF2"]), files)]);
    let new = Installed::new(m, InstallOptions::default());
    let change = PackageChange::Add(&new);
    let snap = s.snapshot_for(change).unwrap();
    let part = s.transition(snap, change).expect_err("refused").to_string();
    let whole = change_transition(&s.snapshot().unwrap(), change).expect_err("refused").to_string();
    assert_eq!(part, whole);
    assert!(part.contains("c200/f1 belongs to both c123 and c200"), "{part}");
}
