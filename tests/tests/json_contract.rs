//! The `--json` contract of both tools (README "JSON output", issue 12): the JSON Schemas
//! committed in `schema/json/` are the ones the output types generate, and every
//! command's real output — successes, refusals, integrity failures and usage errors, run
//! through the binaries — is one JSON object with `"schema": 1` and its exit code, an
//! `error` object with a class on failure, and validates against its command's schema.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use hotfix_tests::channel::{make_role_keys, online_key_args, repo_init_args, role_key};
use hotfix_tests::root::{Kit, flip_stub_byte, hotfix, run_installer};
use hotfix_tests::run::{Outcome, bin, pkgtool};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 test path")
}

fn schema_dir(tool: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schema/json").join(tool)
}

#[test]
fn committed_json_schemas_match_the_output_types() {
    let update = std::env::var_os("UPDATE_SCHEMA").is_some();
    for (tool, generated) in [
        ("hotfix", hotfix_runtime::cli::json::schemas()),
        ("pkgtool", pkgtool::output::schemas()),
        ("channel", hotfix_channel::schemas()),
    ] {
        let dir = schema_dir(tool);
        if update {
            fs::create_dir_all(&dir).unwrap();
            for e in fs::read_dir(&dir).unwrap() {
                fs::remove_file(e.unwrap().path()).unwrap();
            }
            for (name, text) in &generated {
                fs::write(dir.join(format!("{name}.schema.json")), text).unwrap();
            }
        }
        let committed: BTreeSet<String> = fs::read_dir(&dir)
            .map(|d| d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let expected: BTreeSet<String> = generated.iter().map(|(n, _)| format!("{n}.schema.json")).collect();
        assert_eq!(
            committed, expected,
            "schema/json/{tool}/ does not hold one schema per command; regenerate with \
             `UPDATE_SCHEMA=1 cargo test -p hotfix-tests --test json_contract`"
        );
        for (name, text) in &generated {
            let committed = fs::read_to_string(dir.join(format!("{name}.schema.json"))).unwrap_or_default();
            assert!(
                &committed == text,
                "schema/json/{tool}/{name}.schema.json is out of date with the output types; regenerate with \
                 `UPDATE_SCHEMA=1 cargo test -p hotfix-tests --test json_contract`"
            );
        }
    }
}

/// Checks one `--json` run of `tool`'s `command`: exactly one JSON object on standard
/// output, `schema` 1, `exit_code` the process's, an `error` with a class exactly when it
/// failed (`class`: the one expected), valid against `schema/json/TOOL/COMMAND.schema.json`.
#[track_caller]
fn contract(tool: &str, command: &str, out: &Outcome, code: i32, class: Option<&str>) -> serde_json::Value {
    out.expect_code(code);
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{tool} {command}: stdout is not one JSON value ({e}):\n{}", out.stdout));
    assert!(v.is_object(), "{tool} {command}: not an object: {v}");
    assert_eq!(v["schema"], 1, "{tool} {command}: {v}");
    assert_eq!(v["exit_code"], code, "{tool} {command}: {v}");
    match class {
        Some(class) => {
            assert_eq!(v["error"]["class"], class, "{tool} {command}: {v}");
            assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        }
        None => assert!(v.get("error").is_none(), "{tool} {command}: unexpected error: {v}"),
    }
    let path = schema_dir(tool).join(format!("{command}.schema.json"));
    let schema: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let errors: Vec<String> = validator.iter_errors(&v).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{tool} {command} output does not match {}:\n{}\n{v}",
        path.display(),
        errors.join("\n")
    );
    v
}

/// Whether `v` validates against `schema/json/TOOL/COMMAND.schema.json`.
fn valid(tool: &str, command: &str, v: &serde_json::Value) -> bool {
    let path = schema_dir(tool).join(format!("{command}.schema.json"));
    let schema: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).unwrap().is_valid(v)
}

#[test]
fn every_hotfix_command_s_json_validates_against_its_schema() {
    let kit = Kit::new("every_hotfix_command_s_json_validates_against_its_schema");
    let root = kit.path().join("root");
    let (rtm, kb4) = (kit.contoso("rtm"), kit.contoso("kb4"));
    let v = contract(
        "hotfix",
        "init",
        &hotfix(&root, ["init", "--product", "contoso", "--trust", s(&kit.public), "--json"]),
        0,
        None,
    );
    assert_eq!(v["trusted_key"]["name"], "publisher");
    let v = contract("hotfix", "install", &hotfix(&root, ["install", s(&rtm), "--json"]), 0, None);
    assert_eq!(v["baseline"]["before"], serde_json::Value::Null);
    let v = contract("hotfix", "install", &hotfix(&root, ["install", s(&kb4), "--what-if", "--json"]), 0, None);
    assert_eq!(v["decision"]["outcome"], "would-install");
    let v = contract("hotfix", "install", &hotfix(&root, ["install", s(&kb4), "--json"]), 0, None);
    assert_eq!(v["stashed"][0]["branch"], "ldr", "stashed builds are objects: {v}");
    let dir = kit.path().join("x");
    let v =
        contract("hotfix", "install", &hotfix(&root, ["install", s(&kb4), "--extract", s(&dir), "--json"]), 0, None);
    assert_eq!(v["package"]["id"], "KB4");
    contract("hotfix", "install", &hotfix(&root, ["install", "--reinstall", s(&kb4), "--json"]), 0, None);
    contract("hotfix", "install", &hotfix(&root, ["install", s(&rtm), "--json"]), 5, Some("already-installed"));
    let v = contract("hotfix", "list", &hotfix(&root, ["list", "--json"]), 0, None);
    assert_eq!(v["packages"][0]["establishes"], serde_json::json!({"name": "RTM", "level": 0}), "data, not prose");
    // The schemas have teeth: the old prose shape, a missing version, an error without a class.
    let mut prose = v.clone();
    prose["packages"][0]["establishes"] = "RTM (level 0)".into();
    assert!(!valid("hotfix", "list", &prose));
    let mut unversioned = v.clone();
    unversioned.as_object_mut().unwrap().remove("schema");
    assert!(!valid("hotfix", "list", &unversioned));
    let classless = serde_json::json!({"schema": 1, "exit_code": 1, "error": {"message": "x"}});
    assert!(!valid("hotfix", "list", &classless));
    let v = contract("hotfix", "status", &hotfix(&root, ["status", "kernel", "--json"]), 0, None);
    assert_eq!(v["components"][0]["why"], serde_json::json!({"rule": "no-ldr-request", "hotfixes": [], "qfe": []}));
    contract("hotfix", "status", &hotfix(&root, ["status", "nothing", "--json"]), 1, Some("refused"));
    contract("hotfix", "list", &hotfix(&root, ["list", "kb4", "--json"]), 0, None);
    contract("hotfix", "list", &hotfix(&root, ["list", "KB999", "--json"]), 1, Some("refused"));
    contract("hotfix", "owner", &hotfix(&root, ["owner", "bin/kernel.dll", "--json"]), 0, None);
    contract("hotfix", "owner", &hotfix(&root, ["owner", "nobody/owns.this", "--json"]), 1, Some("refused"));
    contract("hotfix", "files", &hotfix(&root, ["files", "KB4", "--json"]), 0, None);
    contract("hotfix", "files", &hotfix(&root, ["files", "kernel", "--json"]), 0, None);
    contract("hotfix", "query", &hotfix(&root, ["query", "--fix", "KB4", "--json"]), 0, None);
    contract("hotfix", "query", &hotfix(&root, ["query", "--fix", "KB3", "--json"]), 9, None);
    let v = contract("hotfix", "policy", &hotfix(&root, ["policy", "branch", "ldr", "--json"]), 0, None);
    assert_eq!(v["components"][0]["why"]["rule"], "policy-forces-ldr", "{v}");
    contract("hotfix", "check", &hotfix(&root, ["check", "--json"]), 0, None);
    fs::write(root.join("bin/kernel.dll"), "changed\n").unwrap();
    let v = contract("hotfix", "check", &hotfix(&root, ["check", "--json"]), 1, None);
    assert_eq!(
        (v["differences"][0]["kind"].as_str(), v["differences"][0]["repaired"].as_bool()),
        (Some("content"), Some(false))
    );
    let v = contract("hotfix", "check", &hotfix(&root, ["check", "--repair", "--json"]), 0, None);
    assert_eq!(v["differences"][0]["repaired"], true, "{v}");
    contract("hotfix", "cleanup", &hotfix(&root, ["cleanup", "--json"]), 0, None);
    contract("hotfix", "trust", &hotfix(&root, ["trust", "list", "--json"]), 0, None);
    contract("hotfix", "trust", &hotfix(&root, ["trust", "remove", "nobody", "--json"]), 1, Some("refused"));
    contract("hotfix", "recover", &hotfix(&root, ["recover", "--json"]), 0, None);
    let lock = fs::OpenOptions::new().read(true).write(true).open(root.join(".servicing/lock")).unwrap();
    lock.try_lock().unwrap();
    contract("hotfix", "uninstall", &hotfix(&root, ["uninstall", "KB4", "--json"]), 8, Some("busy"));
    drop(lock);
    contract("hotfix", "uninstall", &hotfix(&root, ["uninstall", "KB4", "--json"]), 0, None);
    let docs = kit.path().join("docs");
    contract("hotfix", "generate-docs", &hotfix(&root, ["generate-docs", s(&docs), "--json"]), 0, None);

    // A store problem is data too: which blob, which package.
    let sha = hotfix_tests::root::manifest(&rtm).blobs[0].contents()[0].0.to_string();
    fs::remove_file(hotfix_tests::root::store_blob(&root, &sha)).unwrap();
    let v = contract("hotfix", "check", &hotfix(&root, ["check", "--json"]), 1, None);
    let problem = &v["problems"][0];
    assert_eq!((problem["kind"].as_str(), problem["blob"].as_str()), (Some("blob-missing"), Some(sha.as_str())), "{v}");
    assert_eq!(problem["package"], "contoso-rtm", "{v}");

    // Integrity failures carry the reader's class.
    let tampered = kit.path().join("tampered.run");
    flip_stub_byte(&kit.contoso_installer("kb4"), &tampered);
    contract("hotfix", "install", &hotfix(&root, ["install", s(&tampered), "--json"]), 6, Some("bad-signature"));

    // Usage errors: clap's, the switch preprocessor's, and the runtime's own.
    contract("hotfix", "usage", &hotfix(&root, ["list", "--no-such-flag", "--json"]), 2, Some("usage"));
    contract("hotfix", "usage", &hotfix(&root, ["--json", "no-such-command"]), 2, Some("usage"));
    contract("hotfix", "usage", &hotfix(&root, ["list", "/nosuchswitch", "--json"]), 2, Some("usage"));
    contract("hotfix", "list", &hotfix(&root, ["list", "/B:QFE", "--json"]), 2, Some("usage"));
    let v = contract("hotfix", "usage", &hotfix(&root, ["--json", "--help"]), 0, None);
    assert!(v["message"].as_str().unwrap().contains("Usage"), "{v}");
    contract("hotfix", "usage", &hotfix(&root, ["--json", "--version"]), 0, None);
}

/// One key per repository role in the kit's `repo-keys/`: a function from role to key file,
/// and the online roles' key arguments.
fn repo_keys(kit: &Kit) -> (impl Fn(&str) -> String + use<>, Vec<String>) {
    let keys = kit.path().join("repo-keys");
    make_role_keys(&keys);
    let online = online_key_args(&keys);
    (move |role: &str| role_key(&keys, role), online)
}

#[test]
fn channel_commands_json_validates_against_their_schemas() {
    let kit = Kit::new("channel_commands_json_validates_against_their_schemas");
    let (_, online) = repo_keys(&kit);
    let dir = kit.path().join("repo");
    pkgtool(repo_init_args(&dir, &kit.path().join("repo-keys"))).expect_code(0);
    let mut add = vec!["repo".to_string(), "add".into(), s(&dir).into(), s(&kit.contoso("kb4")).into()];
    add.extend(["--trust".to_string(), s(&kit.public).to_string()]);
    add.extend(online);
    pkgtool(&add).expect_code(0);

    // What the repository signs beside TUF's own fields matches its committed schema.
    let targets: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join("metadata/2.targets.json")).unwrap()).unwrap();
    let custom = &targets["signed"]["targets"]["KB4.pkg"]["custom"]["hotfix"];
    assert!(valid("channel", "package-target", custom), "{custom}");
    assert!(!valid("channel", "package-target", &serde_json::json!({"id": "KB4"})));
    let policy: serde_json::Value = serde_json::from_str(
        r#"{"packages": {"KB4": {"state": "halted", "waves": {"pilot": {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"}}}}}"#,
    )
    .unwrap();
    let parsed: hotfix_channel::rollout::Policy = serde_json::from_value(policy.clone()).unwrap();
    assert!(valid("channel", "rollout-policy", &serde_json::to_value(&parsed).unwrap()));
    assert!(valid("channel", "rollout-policy", &policy));

    let root = kit.root("root");
    hotfix(&root, ["install", s(&kit.contoso("rtm"))]).expect_code(0);
    let url = format!("file://{}/", dir.display());
    let root_json = dir.join("root.json");
    contract("hotfix", "scan", &hotfix(&root, ["scan", "--json"]), 1, Some("refused"));
    let v = contract(
        "hotfix",
        "subscribe",
        &hotfix(&root, ["subscribe", &url, "--root-json", s(&root_json), "--json"]),
        0,
        None,
    );
    assert_eq!(v["root_version"], 1);
    let v = contract("hotfix", "scan", &hotfix(&root, ["scan", "--json"]), 0, None);
    assert_eq!(v["offered"][0]["id"], "KB4");
    let v = contract("hotfix", "rollout", &hotfix(&root, ["rollout", "--defer-days", "2", "--json"]), 0, None);
    assert_eq!((v["settings"]["defer_days"].as_u64(), v["changed"].as_bool()), (Some(2), Some(true)), "{v}");
    contract("hotfix", "usage", &hotfix(&root, ["rollout", "--defer-days", "99999", "--json"]), 2, Some("usage"));
    hotfix(&root, ["rollout", "--defer-days", "0"]).expect_code(0);
    let v = contract("hotfix", "update", &hotfix(&root, ["update", "--json"]), 0, None);
    assert_eq!(v["installed"][0]["package"], "KB4");
    let v = contract("hotfix", "update", &hotfix(&root, ["update", "--json"]), 0, None);
    assert_eq!(v["installed"], serde_json::json!([]));
    contract("hotfix", "unsubscribe", &hotfix(&root, ["unsubscribe", "--json"]), 0, None);
    contract("hotfix", "scan", &hotfix(&root, ["scan", "--json"]), 1, Some("refused"));
}

#[test]
fn a_self_contained_installer_s_json_validates_against_the_install_schema() {
    let kit = Kit::new("a_self_contained_installer_s_json_validates_against_the_install_schema");
    let root = kit.root("root");
    hotfix(&root, ["install", s(&kit.contoso("rtm"))]).expect_code(0);
    let exe = kit.contoso_installer("kb4");
    let config = kit.config_dir();
    let v = contract("hotfix", "install", &run_installer(&exe, &config, ["--root", s(&root), "--json"], &[]), 2, None);
    assert_eq!(v["decision"]["outcome"], "would-install");
    assert_eq!(v["root_from"], serde_json::json!({"via": "flag", "file": null}), "{v}");
    let v =
        contract("hotfix", "install", &run_installer(&exe, &config, ["--json"], &[("HOTFIX_ROOT", s(&root))]), 2, None);
    assert_eq!(v["root_from"]["via"], "environment", "{v}");
    contract(
        "hotfix",
        "install",
        &run_installer(&exe, &config, ["--root", s(&root), "/quiet", "/nosuch", "--json"], &[]),
        2,
        Some("usage"),
    );
    let v = contract(
        "hotfix",
        "install",
        &run_installer(&exe, &config, ["--root", s(&root), "--install", "--json"], &[]),
        0,
        None,
    );
    assert_eq!(v["package"], "KB4");
    contract(
        "hotfix",
        "install",
        &run_installer(&exe, &config, ["--root", s(&root), "/uninstall", "/quiet", "--json"], &[]),
        0,
        None,
    );
}

#[test]
fn every_pkgtool_command_s_json_validates_against_its_schema() {
    let kit = Kit::new("every_pkgtool_command_s_json_validates_against_its_schema");
    let t = kit.path();
    let name = t.join("signer");
    let v = contract("pkgtool", "keygen", &pkgtool(["keygen", s(&name), "--json", "--quiet"]), 0, None);
    assert_eq!(v["key_id"].as_str().map(str::len), Some(16));
    let spec = hotfix_tests::root::examples().join("kb4.toml");
    let pkg = t.join("kb4.pkg");
    let v = contract(
        "pkgtool",
        "build",
        &pkgtool(["build", s(&spec), "--key", s(&kit.key), "-o", s(&pkg), "--json"]),
        0,
        None,
    );
    assert_eq!((v["id"].as_str(), v["kind"].as_str()), (Some("KB4"), Some("update")));
    contract("pkgtool", "verify", &pkgtool(["verify", s(&pkg), "--trust", s(&kit.public), "--json"]), 0, None);
    contract(
        "pkgtool",
        "verify",
        &pkgtool(["verify", "--deep", s(&pkg), "--trust", s(&kit.public), "--json"]),
        0,
        None,
    );
    let other = t.join("signer.pub");
    contract(
        "pkgtool",
        "verify",
        &pkgtool(["verify", s(&pkg), "--trust", s(&other), "--json"]),
        6,
        Some("untrusted-key"),
    );
    contract("pkgtool", "inspect", &pkgtool(["inspect", s(&pkg), "--json"]), 0, None);
    contract("pkgtool", "inspect", &pkgtool(["inspect", s(&pkg), "--trust", s(&kit.public), "--json"]), 0, None);
    contract("pkgtool", "inspect", &pkgtool(["inspect", s(&t.join("missing.pkg")), "--json"]), 1, Some("io"));
    let out_dir = t.join("out");
    contract(
        "pkgtool",
        "extract",
        &pkgtool(["extract", s(&pkg), s(&out_dir), "--trust", s(&kit.public), "--json"]),
        0,
        None,
    );
    contract(
        "pkgtool",
        "extract",
        &pkgtool(["extract", s(&pkg), s(&out_dir), "--trust", s(&kit.public), "--json"]),
        1,
        Some("refused"),
    );
    let v = contract("pkgtool", "filever", &pkgtool(["filever", s(&bin("hotfix")), "--json"]), 0, None);
    assert_eq!(v["files"][0]["info"]["format"], "elf64");
    contract("pkgtool", "filever", &pkgtool(["filever", s(&t.join("missing")), "--json"]), 1, Some("io"));
    let docs = t.join("docs");
    contract("pkgtool", "generate-docs", &pkgtool(["generate-docs", s(&docs), "--json"]), 0, None);

    let tampered = t.join("tampered.run");
    flip_stub_byte(&kit.contoso_installer("kb4"), &tampered);
    contract(
        "pkgtool",
        "verify",
        &pkgtool(["verify", s(&tampered), "--trust", s(&kit.public), "--json"]),
        6,
        Some("bad-signature"),
    );

    // Usage errors print JSON too (they printed nothing on standard output before).
    let out = pkgtool(["verify", s(&pkg), "--json"]);
    contract("pkgtool", "usage", &out, 2, Some("usage"));
    assert!(out.stderr.contains("--trust"), "clap's message stays on standard error: {}", out.stderr);
    contract("pkgtool", "usage", &pkgtool(["--json", "no-such-command"]), 2, Some("usage"));
    contract("pkgtool", "usage", &pkgtool(["--json", "--help"]), 0, None);
    contract("pkgtool", "usage", &pkgtool(["--json", "--version"]), 0, None);
}

#[test]
fn pkgtool_repo_outputs_validate_against_their_schema() {
    let kit = Kit::new("pkgtool_repo_outputs_validate_against_their_schema");
    let (key, online) = repo_keys(&kit);
    let keys = kit.path().join("repo-keys");
    let dir = kit.path().join("repo");
    let mut init = vec!["--json".to_string(), "repo".into(), "init".into(), s(&dir).into(), "--root-key".into()];
    init.push(key("root"));
    init.extend(online.clone());
    let v = contract("pkgtool", "repo", &pkgtool(&init), 0, None);
    assert!(v["key_ids"]["root"].as_str().is_some_and(|k| !k.is_empty()), "{v}");
    let kb4 = kit.contoso("kb4");
    let add = |trust: &Path| {
        let mut a = vec!["--json".to_string(), "repo".into(), "add".into(), s(&dir).into(), s(&kb4).into()];
        a.extend(["--trust".to_string(), s(trust).to_string()]);
        a.extend(online.clone());
        pkgtool(&a)
    };
    let v = contract("pkgtool", "repo", &add(&kit.public), 0, None);
    assert_eq!(v["metadata"]["id"], "KB4");
    let other = keys.join("targets.pub");
    contract("pkgtool", "repo", &add(&other), 6, Some("untrusted-key"));
    let v = contract(
        "pkgtool",
        "repo",
        &pkgtool(["--json", "repo", "timestamp", s(&dir), "--timestamp-key", &key("timestamp")]),
        0,
        None,
    );
    assert!(v["version"].as_u64().is_some_and(|n| n >= 2), "{v}");

    pkgtool(["-q", "keygen", s(&keys.join("timestamp2"))]).expect_code(0);
    let rotate = |root: &str| {
        pkgtool([
            "--json",
            "repo",
            "rotate",
            s(&dir),
            "--role",
            "timestamp",
            "--new-key",
            &key("timestamp2"),
            "--threshold",
            "1",
            "--root-key",
            &key(root),
            "--timestamp-key",
            &key("timestamp"),
        ])
    };
    contract("pkgtool", "repo", &rotate("targets"), 1, Some("refused"));
    let v = contract("pkgtool", "repo", &rotate("root"), 0, None);
    assert_eq!(v["role"], "timestamp", "{v}");
    assert_eq!(v["root_version"], 2, "{v}");
    assert_eq!(v["accepted_by_previous_root"], true, "{v}");
}
