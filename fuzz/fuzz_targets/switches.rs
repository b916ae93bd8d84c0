//! The Windows switch pre-parser (`hotfix_runtime::switches::preprocess`), in both modes.
//! Input: the command line, words separated by NUL (the first is the program name).
//! Properties: no panic; the output keeps every word it was given, in order, adding only
//! long options and `install`.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use hotfix_runtime::switches::{Mode, preprocess};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data.split(|&b| b == 0).map(|w| std::ffi::OsStr::from_bytes(w).to_owned()).collect();
    let subcommands: Vec<String> = ["install", "uninstall", "status", "verify"].map(String::from).to_vec();
    for mode in [Mode::Runtime(&subcommands), Mode::Installer] {
        let Ok(out) = preprocess(args.clone(), mode) else { continue };
        assert!(out.len() >= args.len(), "a word was dropped");
        assert_eq!(out.first(), args.first(), "the program name changed");
    }
});
