//! The file-level diff: untouched files are never rewritten, mode-only changes are marked,
//! removals carry what they remove, and the restart flag follows the touched variants.

use std::collections::BTreeMap;

use hotfix_schema::{Mode, RelPath};

use super::fixtures::*;
use crate::engine::{ActiveFile, diff};

fn file(component: &str, content: &str, mode: u32) -> ActiveFile {
    ActiveFile {
        component: name(component),
        package: name("P"),
        sha256: digest(content),
        size: content.len() as u64,
        mode: Mode::new(mode).unwrap(),
        restart: false,
    }
}

fn files(entries: &[(&str, ActiveFile)]) -> BTreeMap<RelPath, ActiveFile> {
    entries.iter().map(|(p, f)| (RelPath::new(p).unwrap(), f.clone())).collect()
}

#[test]
fn identical_sets_give_an_empty_plan() {
    let a = files(&[("a", file("k", "1", 0o644)), ("b", file("k", "2", 0o755))]);
    let plan = diff(&a, &a);
    assert!(plan.is_empty());
    assert_eq!((plan.unchanged, plan.restart), (2, false));
}

#[test]
fn untouched_files_are_never_rewritten_even_when_their_owner_changes() {
    let mut moved = file("k", "same", 0o644);
    let old = files(&[("a", moved.clone()), ("b", file("k", "old", 0o644))]);
    moved.package = name("Q");
    moved.component = name("other");
    let new = files(&[("a", moved), ("b", file("k", "new", 0o644))]);
    let plan = diff(&old, &new);
    assert_eq!(plan.unchanged, 0);
    assert_eq!(plan.relabel.len(), 1, "an inventory update, not a write");
    assert_eq!(plan.relabel[0].path.as_str(), "a");
    assert_eq!(plan.put.len(), 1);
    assert_eq!(plan.put[0].path.as_str(), "b");
    assert!(!plan.put[0].mode_only());
    assert_eq!(plan.put[0].old, Some(file("k", "old", 0o644)));
}

#[test]
fn a_mode_change_alone_is_a_mode_only_put() {
    let old = files(&[("a", file("k", "x", 0o644))]);
    let new = files(&[("a", file("k", "x", 0o755))]);
    let plan = diff(&old, &new);
    assert_eq!(plan.put.len(), 1);
    assert!(plan.put[0].mode_only());
}

#[test]
fn added_and_removed_files_are_listed_in_path_order() {
    let old = files(&[("a", file("k", "1", 0o644)), ("c", file("k", "3", 0o644)), ("d", file("k", "4", 0o644))]);
    let new = files(&[("b", file("k", "2", 0o644)), ("d", file("k", "4", 0o644)), ("e", file("k", "5", 0o644))]);
    let plan = diff(&old, &new);
    let put: Vec<&str> = plan.put.iter().map(|p| p.path.as_str()).collect();
    let removed: Vec<&str> = plan.remove.iter().map(|r| r.path.as_str()).collect();
    assert_eq!((put, removed, plan.unchanged), (vec!["b", "e"], vec!["a", "c"], 1));
    assert!(plan.put.iter().all(|p| p.old.is_none()));
    let mut disk = old.clone();
    apply(&mut disk, &plan);
    assert_eq!(disk, new);
}

#[test]
fn restart_follows_the_variants_of_touched_files_only() {
    let mut needs = file("k", "1", 0o644);
    needs.restart = true;
    let quiet = files(&[("a", file("k", "1", 0o644))]);
    let loud = files(&[("a", needs.clone())]);
    assert!(!diff(&quiet, &loud).restart, "same bytes: nothing written, no restart");
    let mut changed = needs;
    changed.sha256 = digest("2");
    assert!(diff(&quiet, &files(&[("a", changed.clone())])).restart, "writing a restart variant");
    assert!(diff(&files(&[("a", changed)]), &BTreeMap::new()).restart, "removing a restart variant");
}

fn arbitrary_files() -> impl proptest::strategy::Strategy<Value = BTreeMap<RelPath, ActiveFile>> {
    use proptest::prelude::*;
    prop::collection::btree_map(0u8..8, (0u8..3, 0u8..2, 0u8..2, any::<bool>()), 0..8).prop_map(|m| {
        m.into_iter()
            .map(|(p, (content, mode, owner, restart))| {
                let mut f =
                    file(["k", "n"][usize::from(owner)], &content.to_string(), [0o644, 0o755][usize::from(mode)]);
                f.restart = restart;
                (RelPath::new(&format!("f{p}")).unwrap(), f)
            })
            .collect()
    })
}

proptest::proptest! {
    /// Applying the diff gives the new set; only paths whose bytes or mode differ are written.
    #[test]
    fn applying_the_diff_gives_the_new_set_and_writes_only_real_changes(
        old in arbitrary_files(),
        new in arbitrary_files(),
    ) {
        let plan = diff(&old, &new);
        let mut disk = old.clone();
        apply(&mut disk, &plan);
        proptest::prop_assert_eq!(&disk, &new);
        for p in &plan.put {
            proptest::prop_assert!(old.get(&p.path).is_none_or(|o| !o.same_file(&p.file)));
        }
        let kept = old.keys().filter(|p| new.contains_key(*p)).count();
        proptest::prop_assert_eq!(plan.unchanged + plan.relabel.len() + plan.put.iter().filter(|p| p.old.is_some()).count(), kept);
    }
}
