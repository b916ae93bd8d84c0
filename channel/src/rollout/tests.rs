//! The rollout decision's properties.

use super::*;

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn policy(state: State) -> Policy {
    let mut waves = BTreeMap::new();
    waves.insert("pilot".to_string(), Wave { start: t("2026-12-01T00:00:00Z"), end: t("2026-12-02T00:00:00Z") });
    waves.insert("broad".to_string(), Wave { start: t("2026-12-03T00:00:00Z"), end: t("2026-12-11T00:00:00Z") });
    let mut packages = BTreeMap::new();
    packages.insert("KB5".to_string(), Schedule { state, waves });
    Policy { packages }
}

fn root(i: u32, ring: &str) -> RootSettings {
    RootSettings { host_id: format!("{i:032x}"), ring: ring.into(), ..RootSettings::default() }
}

#[test]
fn positions_are_stable_and_spread() {
    let p = position("00ff", &n("KB5"));
    assert_eq!(p, position("00ff", &n("kb5")), "ids ignore case");
    assert!((0.0..1.0).contains(&p));
    assert_ne!(p, position("00ff", &n("KB6")), "each package spreads the roots afresh");
    let below_half = (0..10_000).filter(|i| position(&format!("{i:032x}"), &n("KB5")) < 0.5).count();
    assert!((4_800..5_200).contains(&below_half), "{below_half}");
}

#[test]
fn a_quarter_of_the_window_makes_a_quarter_of_the_ring_eligible() {
    let p = policy(State::Active);
    let quarter = t("2026-12-05T00:00:00Z"); // broad: 3rd to 11th, a quarter in
    let eligible =
        (0..10_000).filter(|i| eligibility(&root(*i, "broad"), &p, &n("KB5"), quarter).installs_now()).count();
    assert!((2_300..=2_700).contains(&eligible), "{eligible}");
}

#[test]
fn halt_and_pause_win_over_approval_and_waves() {
    let mut r = root(1, "pilot");
    r.approved = vec![n("kb5")];
    let late = t("2027-01-01T00:00:00Z");
    assert_eq!(eligibility(&r, &policy(State::Halted), &n("KB5"), late), Eligibility::Halted);
    assert_eq!(eligibility(&r, &policy(State::Paused), &n("KB5"), late), Eligibility::Paused);
    assert_eq!(eligibility(&r, &policy(State::Active), &n("KB5"), t("2020-01-01T00:00:00Z")), Eligibility::Approved);
    assert_eq!(
        eligibility(&root(1, "canary"), &policy(State::Active), &n("KB5"), late),
        Eligibility::NotScheduled { ring: "canary".into() }
    );
}

#[test]
fn deferral_and_root_pause_move_the_date() {
    let p = policy(State::Active);
    let mut r = root(7, "pilot");
    let Eligibility::Later { at, .. } = eligibility(&r, &p, &n("KB5"), t("2026-11-30T00:00:00Z")) else { panic!() };
    r.defer_days = 3;
    let Eligibility::Later { at: deferred, .. } = eligibility(&r, &p, &n("KB5"), t("2026-11-30T00:00:00Z")) else {
        panic!()
    };
    assert_eq!(deferred.duration_since(at), SignedDuration::from_hours(72));
    r.pause_until = Some(t("2027-02-01T00:00:00Z"));
    assert_eq!(
        eligibility(&r, &p, &n("KB5"), t("2027-01-01T00:00:00Z")),
        Eligibility::RootPaused { until: t("2027-02-01T00:00:00Z") }
    );
    assert!(eligibility(&r, &p, &n("KB5"), t("2027-02-01T00:00:00Z")).installs_now());
}

#[test]
fn eligibility_is_monotonic_in_time() {
    let p = policy(State::Active);
    for i in 0..500 {
        let r = root(i, "broad");
        let mut was = false;
        let mut now = t("2026-12-02T00:00:00Z");
        while now < t("2026-12-12T00:00:00Z") {
            let is = eligibility(&r, &p, &n("KB5"), now).installs_now();
            assert!(is || !was, "root {i} went back at {now}");
            was = is;
            now = now.checked_add(SignedDuration::from_mins(97)).unwrap();
        }
        assert!(was, "every root is eligible after the wave");
    }
}

#[test]
fn signed_types_ignore_fields_a_newer_publisher_adds() {
    let p: Policy =
        serde_json::from_str(r#"{"packages": {"KB5": {"state": "paused", "waves": {}, "note": "x"}}, "version": 2}"#)
            .unwrap();
    assert_eq!(p.schedule(&n("kb5")).map(|s| s.state), Some(State::Paused));
    let m: crate::meta::PackageMeta = serde_json::from_str(
        r#"{"id": "KB5", "kind": "update", "product": "contoso", "baselines": ["RTM"], "channel": "release",
            "fixes": ["KB5"], "supersedes": [], "severity": "critical"}"#,
    )
    .unwrap();
    assert_eq!(m.id, n("KB5"));
}
