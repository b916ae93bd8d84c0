//! `hotfix-installer`: the stub of self-contained installers. `pkgtool build
//! --self-contained` puts it before the package; run, it checks its own file, then
//! describes, verifies, installs, extracts or uninstalls the package it carries. It links
//! only the installer's command line (no `hotfix` subcommands, man pages or completions),
//! and is built with the size-minded `installer` profile.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hotfix_runtime::cli::installer_stub_main()
}
