//! `hotfix`: the servicing runtime's binary, and the stub of every self-contained
//! installer. Everything — which command line applies, parsing, printing, exit codes — is
//! in the library's `cli` module.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    hotfix_runtime::cli::main()
}
