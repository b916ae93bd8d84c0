//! The selection as a table of the seeds' cases.

use hotfix_schema::{Channel, Kind, Name};

use super::*;
use crate::meta::{PackageMeta, direct_supersedes};

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn pkg(id: &str, kind: Kind, baselines: &[&str], fixes: &[&str]) -> PackageMeta {
    PackageMeta {
        id: n(id),
        kind,
        product: n("contoso"),
        baselines: baselines.iter().map(|b| n(b)).collect(),
        baseline_level: None,
        channel: Channel::Release,
        fixes: fixes.iter().map(|f| n(f)).collect(),
        supersedes: vec![],
    }
}

/// Candidates as `pkgtool repo add` would write them: each one's `supersedes` computed
/// against the others in the order given (publication order).
fn published(metas: Vec<PackageMeta>) -> Vec<Candidate> {
    let mut out: Vec<PackageMeta> = Vec::new();
    for mut m in metas {
        m.supersedes = direct_supersedes(&m, &out.iter().collect::<Vec<_>>());
        out.push(m);
    }
    out.into_iter()
        .map(|meta| Candidate { target: format!("{}.pkg", meta.id), length: 1, sha256: String::new(), meta })
        .collect()
}

fn rtm_root(installed: &[&str]) -> RootView {
    RootView {
        product: Some(n("contoso")),
        baseline: Some((n("RTM"), 0)),
        installed: installed.iter().map(|i| n(i)).collect(),
        ..RootView::default()
    }
}

fn offered(s: &Selection) -> Vec<&str> {
    s.offered.iter().map(|o| o.candidate.meta.id.as_str()).collect()
}

fn why(s: &Selection, id: &str) -> LeftOutReason {
    s.left_out
        .iter()
        .find(|l| l.candidate.meta.id.as_str() == id)
        .map(|l| l.reason.clone())
        .unwrap_or_else(|| panic!("{id} not left out: {s:#?}"))
}

fn rollups() -> Vec<Candidate> {
    published(vec![
        pkg("KB3", Kind::Update, &["RTM"], &["KB3"]),
        pkg("KB4", Kind::Update, &["RTM"], &["KB3", "KB4"]),
        pkg("KB5", Kind::Update, &["RTM"], &["KB3", "KB4", "KB5"]),
        pkg("KB1", Kind::Hotfix, &["RTM"], &["KB1"]),
    ])
}

#[test]
fn only_the_newest_cumulative_rollup_is_offered() {
    let s = select(&rtm_root(&["RTM"]), &rollups());
    assert_eq!(offered(&s), ["KB5"]);
    assert_eq!(s.offered[0].reason, OfferReason::Update);
    assert_eq!(why(&s, "KB3"), LeftOutReason::SupersededBy { by: n("KB5"), installed: false });
    assert_eq!(why(&s, "KB4"), LeftOutReason::SupersededBy { by: n("KB5"), installed: false });
    assert_eq!(why(&s, "KB1"), LeftOutReason::HotfixNotRequested);
}

#[test]
fn a_root_that_skipped_a_rollup_gets_the_next_one_with_every_fix() {
    let s = select(&rtm_root(&["RTM", "KB3"]), &rollups());
    assert_eq!(offered(&s), ["KB5"]);
    let kb5 = &s.offered[0].candidate.meta;
    for fix in ["KB3", "KB4", "KB5"] {
        assert!(kb5.fixes.iter().any(|f| f.as_str() == fix));
    }
    assert_eq!(why(&s, "KB3"), LeftOutReason::AlreadyInstalled);
}

#[test]
fn an_installed_rollup_hides_the_older_ones() {
    let s = select(&rtm_root(&["RTM", "KB5"]), &rollups());
    assert!(offered(&s).is_empty(), "{s:#?}");
    assert_eq!(why(&s, "KB4"), LeftOutReason::SupersededBy { by: n("KB5"), installed: true });
    // KB5 lists KB4 only (KB4 already replaced KB3): the chain is walked to the top.
    assert_eq!(why(&s, "KB3"), LeftOutReason::SupersededBy { by: n("KB5"), installed: true });
    assert_eq!(why(&s, "KB5"), LeftOutReason::AlreadyInstalled);
}

#[test]
fn a_hotfix_is_offered_only_when_named() {
    let mut root = rtm_root(&["RTM"]);
    root.hotfixes_requested = vec![n("kb1")];
    let s = select(&root, &rollups());
    assert_eq!(offered(&s), ["KB5", "KB1"]);
    assert_eq!(s.offered[1].reason, OfferReason::HotfixRequested);
}

#[test]
fn other_baseline_other_product_and_prerelease_are_left_out_with_their_reason() {
    let mut sp1 = pkg("KB7", Kind::Update, &["SP1"], &["KB7"]);
    sp1.supersedes = vec![];
    let mut other = pkg("KB8", Kind::Update, &["RTM"], &["KB8"]);
    other.product = n("fabrikam");
    let mut pre = pkg("KB9", Kind::Update, &["RTM"], &["KB9"]);
    pre.channel = Channel::Prerelease;
    let cands = published(vec![sp1, other, pre]);
    let s = select(&rtm_root(&["RTM"]), &cands);
    assert!(offered(&s).is_empty());
    assert_eq!(why(&s, "KB7"), LeftOutReason::OtherBaseline { root: Some(n("RTM")), package: vec![n("SP1")] });
    assert_eq!(why(&s, "KB8"), LeftOutReason::OtherProduct { product: n("fabrikam") });
    assert_eq!(why(&s, "KB9"), LeftOutReason::Prerelease);
    let mut root = rtm_root(&["RTM"]);
    root.allow_prerelease = true;
    assert_eq!(offered(&select(&root, &cands)), ["KB9"]);
}

#[test]
fn a_prerelease_superseder_does_not_hide_the_release_it_would_replace() {
    let mut pre = pkg("KB5", Kind::Update, &["RTM"], &["KB4", "KB5"]);
    pre.channel = Channel::Prerelease;
    let cands = published(vec![pkg("KB4", Kind::Update, &["RTM"], &["KB4"]), pre]);
    let s = select(&rtm_root(&["RTM"]), &cands);
    assert_eq!(offered(&s), ["KB4"]);
    assert_eq!(why(&s, "KB5"), LeftOutReason::Prerelease);
}

#[test]
fn service_packs_newest_first_and_only_above_the_root() {
    let mut rtm = pkg("RTM", Kind::Baseline, &["RTM"], &[]);
    rtm.baseline_level = Some(0);
    let mut sp1 = pkg("SP1", Kind::Baseline, &["SP1"], &["KB3"]);
    sp1.baseline_level = Some(1);
    let mut sp2 = pkg("SP2", Kind::Baseline, &["SP2"], &["KB3", "KB6"]);
    sp2.baseline_level = Some(2);
    let cands = published(vec![rtm, sp1, sp2]);
    let s = select(&rtm_root(&["RTM"]), &cands);
    assert_eq!(offered(&s), ["SP2"]);
    assert_eq!(s.offered[0].reason, OfferReason::NewBaseline);
    assert_eq!(why(&s, "SP1"), LeftOutReason::SupersededBy { by: n("SP2"), installed: false });
    let fresh = RootView { product: Some(n("contoso")), ..RootView::default() };
    assert_eq!(select(&fresh, &cands).offered[0].reason, OfferReason::FirstBaseline);
}

#[test]
fn the_order_of_the_candidates_does_not_matter() {
    let mut root = rtm_root(&["RTM", "KB3"]);
    root.hotfixes_requested = vec![n("KB1")];
    let mut cands = rollups();
    let want = select(&root, &cands);
    cands.reverse();
    assert_eq!(select(&root, &cands), want);
    cands.swap(0, 2);
    assert_eq!(select(&root, &cands), want);
}

#[test]
fn ids_compare_with_their_numbers_so_kb10_follows_kb9() {
    let s = select(
        &rtm_root(&["RTM"]),
        &published(vec![
            pkg("KB9", Kind::Update, &["RTM"], &["KB9"]),
            pkg("KB10", Kind::Update, &["RTM"], &["KB9", "KB10"]),
            pkg("KB100", Kind::Hotfix, &["RTM"], &["KB100"]),
        ]),
    );
    assert_eq!(offered(&s), ["KB10"]);
    assert_eq!(why(&s, "KB9"), LeftOutReason::SupersededBy { by: n("KB10"), installed: false });
    let order: Vec<&str> = s.left_out.iter().map(|l| l.candidate.meta.id.as_str()).collect();
    assert_eq!(order, ["KB9", "KB100"]);
    assert!(natural("KB9") < natural("kb10") && natural("KB010") == natural("kb10"));
}

#[test]
fn an_offer_names_the_installed_rollup_it_replaces() {
    let mut root = rtm_root(&["RTM", "KB3"]);
    root.installed_meta = vec![pkg("KB3", Kind::Update, &["RTM"], &["KB3"])];
    let s = select(&root, &rollups());
    assert_eq!(offered(&s), ["KB5"]);
    assert_eq!(s.offered[0].replaces, [n("KB3")]);
}

#[test]
fn an_update_is_never_reported_as_replacing_a_hotfix_it_does_not_carry() {
    // KB7 is a hotfix (an LDR build with fix KB7); the KB5 rollup was built without it.
    let mut root = rtm_root(&["RTM", "KB7"]);
    root.installed_meta = vec![pkg("KB7", Kind::Hotfix, &["RTM"], &["KB3", "KB7"])];
    let s = select(&root, &rollups());
    assert_eq!(offered(&s), ["KB5"]);
    assert!(s.offered[0].replaces.is_empty(), "{s:#?}");
    // Not even a later rollup that does carry KB7's fix replaces the hotfix: a hotfix is
    // replaced by a hotfix; the branch rule decides what becomes active.
    let with_fix = published(vec![
        pkg("KB3", Kind::Update, &["RTM"], &["KB3"]),
        pkg("KB5", Kind::Update, &["RTM"], &["KB3", "KB4", "KB5"]),
        pkg("KB8", Kind::Update, &["RTM"], &["KB3", "KB4", "KB5", "KB7", "KB8"]),
    ]);
    let s = select(&root, &with_fix);
    assert_eq!(offered(&s), ["KB8"]);
    assert!(s.offered[0].replaces.is_empty(), "{s:#?}");
}

#[test]
fn an_installed_package_the_repository_dropped_still_supersedes() {
    // The root has KB5 (from an earlier repository state); the repository now lists KB4 only.
    let mut root = rtm_root(&["RTM", "KB5"]);
    root.installed_meta = vec![pkg("KB5", Kind::Update, &["RTM"], &["KB3", "KB4", "KB5"])];
    let s = select(&root, &published(vec![pkg("KB4", Kind::Update, &["RTM"], &["KB3", "KB4"])]));
    assert!(offered(&s).is_empty(), "{s:#?}");
    assert_eq!(why(&s, "KB4"), LeftOutReason::SupersededBy { by: n("KB5"), installed: true });
}
