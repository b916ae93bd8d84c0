//! `hotfix`: the servicing runtime's binary. Used as a self-contained installer's stub
//! (`--stub`), it still runs as that installer; the stub `pkgtool` embeds is the smaller
//! `hotfix-installer` (`src/bin/hotfix-installer.rs`). Everything — which command line
//! applies, parsing, printing, exit codes — is in the library's `cli` module.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hotfix_runtime::cli::main()
}
