//! `cleanup --reset-base` asks before it makes anything permanent: on a terminal it names
//! the packages it would drop and waits for `y`; anything else changes nothing.

use std::path::Path;

use hotfix_tests::root::{Kit, hotfix, installed_ids, tree};
use hotfix_tests::run::bin;

/// Runs `hotfix --root ROOT ARGS` on a pseudo-terminal, typing `answer`; `None` without
/// `script`.
fn on_a_terminal(root: &Path, args: &str, answer: &str) -> Option<(i32, String)> {
    hotfix_tests::run::on_a_terminal(
        &format!("'{}' --root '{}' {args}", bin("hotfix").display(), root.display()),
        answer,
    )
}

#[test]
fn reset_base_on_a_terminal_asks_and_drops_only_on_yes() {
    let kit = Kit::new("reset_base_on_a_terminal_asks_and_drops_only_on_yes");
    let root = kit.root("root");
    for name in ["rtm", "kb4", "sp1"] {
        hotfix(&root, [Path::new("install"), &kit.contoso(name)]).expect_code(0);
    }
    let before = (tree(&root), installed_ids(&root));
    let Some((code, screen)) = on_a_terminal(&root, "cleanup --reset-base", "n\n") else {
        eprintln!("SKIP reset_base_on_a_terminal_asks_and_drops_only_on_yes: util-linux `script` is not installed");
        return;
    };
    assert!(screen.contains("contoso-rtm would be dropped") && screen.contains("Go ahead? [y/N]"), "{screen}");
    assert_eq!(code, 2, "{screen}");
    assert_eq!((tree(&root), installed_ids(&root)), before, "a refused reset changed the root");
    let (code, screen) = on_a_terminal(&root, "cleanup --reset-base", "y\n").expect("script ran before");
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("no longer uninstallable: contoso-rtm."), "{screen}");
    assert_eq!(installed_ids(&root), ["KB4", "contoso-sp1"]);
}
