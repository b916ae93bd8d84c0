//! Staged rollout (issue #15) through the binaries and a real nginx on loopback: rings and
//! waves from the signed rollout policy, the vendor's pause and halt, the prerelease guard,
//! and the administrator's deferral, pause and hand approval — with `HOTFIX_NOW` as the
//! injected clock.

use std::fs;
use std::path::{Path, PathBuf};

use hotfix_channel::client::{self, ClientState, Freshness};
use hotfix_channel::meta::PackageMeta;
use hotfix_channel::rollout::{self, Eligibility, RootSettings};
use hotfix_schema::{Channel as Ch, Name};
use hotfix_tests::channel::{Channel, ids, json, servicing_tree};
use hotfix_tests::root::{copy_tree, hotfix, hotfix_env, installed_ids, tree};
use hotfix_tests::run::pkgtool;
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// The wave windows the tests use.
const PILOT: (&str, &str) = ("2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
const BROAD: (&str, &str) = ("2026-12-03T00:00:00Z", "2026-12-11T00:00:00Z");

/// A channel with the rollout and prerelease roles delegated.
fn staged(case: &str) -> Option<Channel> {
    let c = Channel::http(case)?;
    for role in ["rollout", "prerelease"] {
        pkgtool(["-q", "keygen", s(&c.keys.join(role))]).expect_code(0);
        let mut args = vec!["repo".to_string(), "delegate".into(), s(&c.repo).into(), "--role".into(), role.into()];
        args.extend(["--key".to_string(), c.key(role)]);
        args.extend(c.online_keys());
        pkgtool(&args).expect_code(0);
    }
    Some(c)
}

/// `pkgtool repo rollout` with `extra` arguments.
fn rollout(c: &Channel, extra: &[&str]) {
    let mut args = vec!["repo".to_string(), "rollout".into(), s(&c.repo).into()];
    for (flag, role) in [("--rollout-key", "rollout"), ("--snapshot-key", "snapshot"), ("--timestamp-key", "timestamp")]
    {
        args.extend([flag.to_string(), c.key(role)]);
    }
    args.extend(extra.iter().map(|x| x.to_string()));
    pkgtool(&args).expect_code(0);
}

fn waves(c: &Channel, id: &str) {
    rollout(c, &["--wave", id, "pilot", PILOT.0, PILOT.1, "--wave", id, "broad", BROAD.0, BROAD.1]);
}

/// A root with RTM, subscribed in `ring`.
fn root_in(c: &Channel, name: &str, ring: &str) -> PathBuf {
    let root = c.root(name);
    hotfix(&root, ["rollout", "--ring", ring]).expect_code(0);
    root
}

fn at(root: &Path, now: &str, args: &[&str]) -> hotfix_tests::run::Outcome {
    hotfix_env(root, args, &[("HOTFIX_NOW", now)])
}

fn scan_at(root: &Path, now: &str) -> Value {
    let out = at(root, now, &["scan", "--json"]);
    out.expect_code(0);
    json(&out)
}

fn host_id(root: &Path) -> String {
    let v: Value = serde_json::from_slice(&fs::read(root.join(".servicing/channel/rollout.json")).unwrap()).unwrap();
    v["host_id"].as_str().unwrap().to_string()
}

fn n(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn policy_over_http(c: &Channel) -> rollout::Policy {
    let url = url::Url::parse(&c.url()).unwrap();
    let root = fs::read(c.repo.join("root.json")).unwrap();
    let session = client::open(&url, &root, &ClientState::default(), Freshness::Enforce).unwrap();
    hotfix_channel::roles::policy(session.repository()).unwrap().expect("a signed policy")
}

#[test]
fn wave_spreads_a_quarter_of_roots_at_a_quarter_of_the_window() {
    let Some(c) = staged("wave-quarter") else { return };
    c.publish(&c.rollup(4));
    waves(&c, "KB4");
    let policy = policy_over_http(&c);
    // A quarter of the broad window: the 5th of December.
    let quarter: jiff::Timestamp = "2026-12-05T00:00:00Z".parse().unwrap();
    let eligible = (0u64..10_000)
        .filter(|i| {
            let settings = RootSettings {
                host_id: format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                ring: "broad".into(),
                ..RootSettings::default()
            };
            rollout::eligibility(&settings, &policy, &n("KB4"), quarter).installs_now()
        })
        .count();
    assert!((2_300..=2_700).contains(&eligible), "{eligible} of 10,000 roots eligible a quarter into the wave");

    // Real roots decide the same as the library for their own host ids.
    for i in 0..4 {
        let root = root_in(&c, &format!("r{i}"), "broad");
        let v = scan_at(&root, "2026-12-05T00:00:00Z");
        let settings = RootSettings { host_id: host_id(&root), ring: "broad".into(), ..RootSettings::default() };
        let expected = rollout::eligibility(&settings, &policy, &n("KB4"), quarter);
        assert_eq!(v["offered"][0]["auto"], serde_json::to_value(&expected).unwrap(), "{v:#}");
    }
}

#[test]
fn eligibility_never_goes_backwards() {
    let Some(c) = staged("never-backwards") else { return };
    c.publish(&c.rollup(4));
    waves(&c, "KB4");
    let root = root_in(&c, "r", "broad");
    let mut now: jiff::Timestamp = "2026-12-02T12:00:00Z".parse().unwrap();
    let end: jiff::Timestamp = "2026-12-11T12:00:00Z".parse().unwrap();
    let mut flipped: Option<jiff::Timestamp> = None;
    let mut announced: Option<String> = None;
    while now < end {
        let v = scan_at(&root, &now.to_string());
        let auto = &v["offered"][0]["auto"];
        match auto["kind"].as_str().unwrap() {
            "later" => {
                assert!(flipped.is_none(), "eligible at {flipped:?}, not any more at {now}: {auto}");
                let at = auto["at"].as_str().unwrap().to_string();
                assert!(announced.as_ref().is_none_or(|a| *a == at), "the announced time moved: {announced:?} -> {at}");
                announced = Some(at);
            }
            "now" => {
                flipped.get_or_insert(now);
                assert_eq!(auto["since"].as_str(), announced.as_deref(), "eligible from the time it announced");
            }
            other => panic!("{other}: {auto}"),
        }
        // The vendor re-signs the policy with another package scheduled: KB4 does not move.
        if flipped.is_some() && now.as_second() % 86_400 == 0 {
            waves(&c, "KB5");
        }
        now = now.checked_add(jiff::SignedDuration::from_hours(6)).unwrap();
    }
    assert!(flipped.is_some(), "eligible before the wave ends");
}

#[test]
fn deferral_and_pause_dates_are_honoured() {
    let Some(c) = staged("defer-pause") else { return };
    c.publish(&c.rollup(4));
    waves(&c, "KB4");
    let root = root_in(&c, "r", "pilot");
    // The pilot wave is over on the 2nd; deferred three days, this root waits until the 5th at the latest.
    hotfix(&root, ["rollout", "--defer-days", "3"]).expect_code(0);
    let v = scan_at(&root, "2026-12-02T12:00:00Z");
    let auto = &v["offered"][0]["auto"];
    assert_eq!(auto["kind"], "later", "{auto}");
    let when: jiff::Timestamp = auto["at"].as_str().unwrap().parse().unwrap();
    assert!(
        when >= "2026-12-04T00:00:00Z".parse().unwrap() && when < "2026-12-05T00:00:00Z".parse().unwrap(),
        "{when}"
    );
    let out = at(&root, "2026-12-02T12:00:00Z", &["update", "--auto", "--json"]);
    out.expect_code(0);
    assert_eq!(json(&out)["waiting"][0]["id"], "KB4");
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);

    // Paused by the administrator until the 20th: nothing on the 10th, KB4 on the 20th.
    hotfix(&root, ["rollout", "--pause-until", "2026-12-20T00:00:00Z"]).expect_code(0);
    let out = at(&root, "2026-12-10T00:00:00Z", &["update", "--auto", "--json"]);
    out.expect_code(0);
    assert_eq!(json(&out)["waiting"][0]["auto"]["kind"], "root-paused");
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
    at(&root, "2026-12-20T00:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);

    // A hand approval makes a package eligible before its wave.
    c.publish(&c.rollup(5));
    waves(&c, "KB5");
    let early = root_in(&c, "early", "broad");
    assert_eq!(scan_at(&early, "2026-11-30T00:00:00Z")["offered"][0]["auto"]["kind"], "later");
    hotfix(&early, ["rollout", "--approve", "kb5"]).expect_code(0);
    at(&early, "2026-11-30T00:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&early), ["contoso-rtm", "KB5"]);
}

#[test]
fn halted_package_stops_at_pilot_and_pilot_rolls_back() {
    let Some(c) = staged("halt") else { return };
    c.publish(&c.rollup(4));
    waves(&c, "KB4");
    let pilot = root_in(&c, "pilot", "pilot");
    let broad = root_in(&c, "broad", "broad");
    let before = tree(&pilot);
    // The pilot wave is over: the pilot root installs KB4; the broad wave has not started.
    at(&pilot, "2026-12-02T06:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&pilot), ["contoso-rtm", "KB4"]);
    at(&broad, "2026-12-02T06:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&broad), ["contoso-rtm"]);

    // Pilot reports a problem: the vendor halts KB4.
    rollout(&c, &["--halt", "KB4"]);
    let v = scan_at(&pilot, "2026-12-02T07:00:00Z");
    assert_eq!(v["halted_installed"], serde_json::json!(["KB4"]), "{v:#}");
    let out = at(&pilot, "2026-12-02T07:00:00Z", &["update", "--auto", "--json"]);
    out.expect_code(0);
    assert_eq!(json(&out)["uninstalled"][0]["package"], "KB4");
    assert_eq!(installed_ids(&pilot), ["contoso-rtm"]);
    assert_eq!(tree(&pilot), before, "back to what the pilot root had");
    let log = fs::read_to_string(pilot.join(".servicing/log")).unwrap();
    assert!(log.contains("uninstalled halted [KB4]"), "{log}");

    // The broad ring never gets it, even after its wave; nor does an administrator's manual update.
    let v = scan_at(&broad, "2026-12-12T00:00:00Z");
    let halted = v["left_out"].as_array().unwrap().iter().find(|l| l["id"] == "KB4").cloned();
    assert_eq!(halted.as_ref().map(|l| l["reason"].clone()), Some("halted".into()), "{v:#}");
    let out = at(&broad, "2026-12-12T00:00:00Z", &["update", "--auto", "--json"]);
    out.expect_code(0);
    assert_eq!(json(&out)["installed"], serde_json::json!([]));
    at(&broad, "2026-12-12T00:00:00Z", &["update"]).expect_code(0);
    assert_eq!(installed_ids(&broad), ["contoso-rtm"]);
    // Resumed, it rolls out again by its waves.
    rollout(&c, &["--resume", "KB4"]);
    at(&broad, "2026-12-12T00:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&broad), ["contoso-rtm", "KB4"]);
}

#[test]
fn rollout_role_cannot_add_a_package() {
    use hotfix_channel::repo::Expiries;
    use hotfix_channel::roles::{ChangeKeys, Delegated, set_delegated_target};
    let Some(c) = staged("rollout-adds") else { return };
    c.publish(&c.rollup(4));
    waves(&c, "KB4");
    // Whoever holds the rollout key lists a validly signed package under its own path and
    // schedules it.
    let kb5 = c.rollup(5);
    let mut meta = PackageMeta::from_manifest(&hotfix_tests::root::manifest(&kb5));
    meta.channel = Ch::Release;
    let keys = |role: &str| c.keys.join(format!("{role}.key"));
    let (rk, sk, tk) = (keys("rollout"), [keys("snapshot")], [keys("timestamp")]);
    let ck = ChangeKeys { targets: &[], role: &rk, snapshot: &sk, timestamp: &tk };
    let exp = Expiries::from_now(jiff::Timestamp::now());
    let value = serde_json::to_value(&meta).unwrap();
    set_delegated_target(&c.repo, Delegated::Rollout, "rollout-KB5.pkg", &kb5, ("hotfix", value.clone()), &ck, &exp)
        .unwrap();
    // A name outside its path is refused by the editor outright.
    assert!(set_delegated_target(&c.repo, Delegated::Rollout, "KB5.pkg", &kb5, ("hotfix", value), &ck, &exp).is_err());
    waves(&c, "KB5");

    let root = root_in(&c, "r", "pilot");
    let v = scan_at(&root, "2026-12-05T00:00:00Z");
    assert_eq!(ids(&v, "offered"), ["KB4"], "{v:#}");
    assert!(!ids(&v, "left_out").contains(&"KB5".to_string()), "KB5 is not a package of this repository: {v:#}");
    at(&root, "2026-12-05T00:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
}

/// A prerelease build of the next rollup (its manifest says channel prerelease).
fn prerelease_kb9(c: &Channel) -> PathBuf {
    let release = c.rollup(9);
    let spec = fs::read_to_string(c.kit.path().join("KB9.toml")).unwrap();
    let spec = spec.replacen("title = \"Rollup 9\"", "title = \"Rollup 9 (preview)\"\nchannel = \"prerelease\"", 1);
    let path = c.kit.path().join("KB9pre.toml");
    fs::write(&path, spec).unwrap();
    let _ = release;
    c.kit.build(&path, "KB9pre")
}

#[test]
fn prerelease_published_by_mistake_installs_nowhere_in_auto_mode() {
    use hotfix_runtime::engine::QfeOverride;
    use hotfix_runtime::ops::channel::{ScanOptions, update};
    use hotfix_runtime::ops::{Access, Session};
    let Some(c) = staged("prerelease-mistake") else { return };
    c.publish(&c.rollup(4));
    let kb9 = prerelease_kb9(&c);
    assert_eq!(hotfix_tests::root::manifest(&kb9).package.channel, Ch::Prerelease);

    // `repo add` keeps a prerelease package out of the release packages.
    let mut add = vec!["repo".to_string(), "add".into(), s(&c.repo).into(), s(&kb9).into()];
    add.extend(["--trust".to_string(), s(&c.kit.public).to_string()]);
    add.extend(c.online_keys());
    let out = pkgtool(&add);
    out.expect_code(1);
    assert!(out.stderr.contains("--prerelease-key"), "{}", out.stderr);
    add.extend(["--prerelease-key".to_string(), c.key("prerelease")]);
    pkgtool(&add).expect_code(0);

    // The mistake: the same bytes listed with the release packages, claiming to be a release,
    // and scheduled for every ring at once.
    let mut meta = PackageMeta::from_manifest(&hotfix_tests::root::manifest(&kb9));
    meta.channel = Ch::Release;
    let keys = |role: &str| c.keys.join(format!("{role}.key"));
    let files = hotfix_channel::repo::RoleKeyFiles {
        root: vec![keys("root")],
        targets: vec![keys("targets")],
        snapshot: vec![keys("snapshot")],
        timestamp: vec![keys("timestamp")],
    };
    let exp = hotfix_channel::repo::Expiries::from_now(jiff::Timestamp::now());
    hotfix_channel::repo::add(&c.repo, &kb9, meta, &files, &exp).unwrap();
    let past = ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
    for ring in ["pilot", "broad", "prerelease"] {
        rollout(&c, &["--wave", "KB9", ring, past.0, past.1, "--wave", "KB4", ring, past.0, past.1]);
    }

    // Real roots in automatic mode: KB4 installs, KB9 is refused by its own manifest (exit 7),
    // and nothing of it reaches the root.
    let template = root_in(&c, "template", "broad");
    for (name, ring) in [("pilot", "pilot"), ("broad", "broad")] {
        let root = root_in(&c, name, ring);
        let out = at(&root, "2026-12-01T00:00:00Z", &["update", "--auto", "--json"]);
        out.expect_code(7);
        let v = json(&out);
        assert_eq!(v["installed"][0]["package"], "KB4", "{v:#}");
        assert_eq!(v["refused"][0]["id"], "KB9", "{v:#}");
        assert_eq!(v["refused"][0]["class"], "refused-by-policy", "{v:#}");
        assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
        // The next run does not download the refused bytes again.
        let mut seen = 0;
        c.requests_since(&mut seen);
        let out = at(&root, "2026-12-01T01:00:00Z", &["update", "--auto", "--json"]);
        out.expect_code(7);
        assert!(json(&out)["refused"][0]["message"].as_str().unwrap().contains("not downloaded again"));
        let fetched: Vec<String> = c.requests_since(&mut seen).into_iter().map(|r| r.uri).collect();
        assert!(!fetched.iter().any(|u| u.ends_with(".KB9.pkg")), "{fetched:?}");
    }

    // 1,000 simulated roots (copies of one root, each its own host id and ring), through the
    // runtime library: none installs KB9.
    at(&template, "2026-12-01T00:00:00Z", &["update", "--auto"]).expect_code(7);
    assert_eq!(installed_ids(&template), ["contoso-rtm", "KB4"]);
    let roots = c.kit.path().join("fleet");
    let before = servicing_tree(&template);
    let mut installed_kb9 = 0;
    for i in 0..1000u32 {
        let root = roots.join(format!("{i}"));
        copy_tree(&template, &root);
        let settings = RootSettings {
            host_id: format!("{:032x}", u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            ring: if i % 10 == 0 { "pilot".into() } else { "broad".into() },
            ..RootSettings::default()
        };
        fs::write(root.join(".servicing/channel/rollout.json"), serde_json::to_vec(&settings).unwrap()).unwrap();
        let mut s = Session::open(&root, "update --auto", Access::Write { wait: false }).unwrap();
        let opts = ScanOptions { auto: true, ..ScanOptions::default() };
        let v = update(&mut s, &opts, &QfeOverride::Off).unwrap();
        let auto_kb9 = v.scan.offered.iter().find(|o| o.id == "KB9").map(|o| o.auto.clone());
        assert!(matches!(auto_kb9, Some(Eligibility::Now { .. })), "scheduled for every ring: {auto_kb9:?}");
        if v.installed.iter().any(|r| r.package.as_deref() == Some("KB9")) {
            installed_kb9 += 1;
        }
        assert!(v.failed.is_none(), "root {i}: {:?}", v.failed);
        assert_eq!(v.refused.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["KB9"], "root {i}");
        assert_eq!(v.exit_code(), 7);
        fs::remove_dir_all(&root).unwrap();
    }
    assert_eq!(installed_kb9, 0);
    assert_eq!(servicing_tree(&template), before);

    // Only a root that opted into the prerelease ring takes it automatically.
    let preview = root_in(&c, "preview", "prerelease");
    at(&preview, "2026-12-01T00:00:00Z", &["update", "--auto"]).expect_code(0);
    assert!(installed_ids(&preview).contains(&"KB9".to_string()), "{:?}", installed_ids(&preview));
}

#[test]
fn a_halted_rollup_does_not_hide_the_one_it_supersedes() {
    let Some(c) = staged("halt-superseder") else { return };
    c.publish(&c.rollup(4));
    c.publish(&c.rollup(5));
    waves(&c, "KB4");
    waves(&c, "KB5");
    let fresh = root_in(&c, "fresh", "pilot");
    let had_kb5 = root_in(&c, "had-kb5", "pilot");
    at(&had_kb5, "2026-12-02T06:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&had_kb5), ["contoso-rtm", "KB5"]);

    rollout(&c, &["--halt", "KB5"]);
    // A root that never had KB5 gets KB4, which KB5 would have superseded.
    at(&fresh, "2026-12-02T06:00:00Z", &["update", "--auto"]).expect_code(0);
    assert_eq!(installed_ids(&fresh), ["contoso-rtm", "KB4"]);
    // A root that had KB5 goes back, and gets KB4 in the same run.
    let out = at(&had_kb5, "2026-12-02T06:00:00Z", &["update", "--auto", "--json"]);
    out.expect_code(0);
    let v = json(&out);
    assert_eq!(v["uninstalled"][0]["package"], "KB5", "{v:#}");
    assert_eq!(v["installed"][0]["package"], "KB4", "{v:#}");
    assert_eq!(installed_ids(&had_kb5), ["contoso-rtm", "KB4"]);
}

#[test]
fn an_unreadable_policy_stops_automatic_installs_not_the_scan() {
    use hotfix_channel::repo::Expiries;
    use hotfix_channel::roles::{ChangeKeys, Delegated, set_delegated_target};
    use hotfix_channel::rollout::{POLICY_KEY, POLICY_TARGET};
    let Some(c) = staged("bad-policy") else { return };
    c.publish(&c.rollup(4));
    // The rollout role signs a policy no client can read (a wave without its end).
    let keys = |role: &str| c.keys.join(format!("{role}.key"));
    let (rk, sk, tk) = (keys("rollout"), [keys("snapshot")], [keys("timestamp")]);
    let ck = ChangeKeys { targets: &[], role: &rk, snapshot: &sk, timestamp: &tk };
    let file = c.kit.path().join("policy.json");
    fs::write(&file, "{}").unwrap();
    let bad = serde_json::json!({"packages": {"KB4": {"waves": {"pilot": {"start": "2026-12-01T00:00:00Z"}}}}});
    set_delegated_target(
        &c.repo,
        Delegated::Rollout,
        POLICY_TARGET,
        &file,
        (POLICY_KEY, bad),
        &ck,
        &Expiries::from_now(jiff::Timestamp::now()),
    )
    .unwrap();
    let root = root_in(&c, "r", "pilot");
    let v = scan_at(&root, "2026-12-05T00:00:00Z");
    assert_eq!(ids(&v, "offered"), ["KB4"]);
    assert_eq!(v["offered"][0]["auto"]["kind"], "bad-policy", "{v:#}");
    let out = at(&root, "2026-12-05T00:00:00Z", &["update", "--auto", "--json"]);
    out.expect_code(0);
    assert_eq!(json(&out)["waiting"][0]["auto"]["kind"], "bad-policy");
    assert_eq!(installed_ids(&root), ["contoso-rtm"]);
    // The administrator's own update still works.
    at(&root, "2026-12-05T00:00:00Z", &["update"]).expect_code(0);
    assert_eq!(installed_ids(&root), ["contoso-rtm", "KB4"]);
}
