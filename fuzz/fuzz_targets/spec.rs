//! The spec parser (`pkgtool::spec::load`): the input is written as a spec file beside a
//! small payload directory (`payload/a.dll`, `payload/sub/b.txt`), so a spec naming
//! `dir = "payload"` gets past the walk. Property: no panic.
#![no_main]

use std::fs;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let payload = dir.path().join("payload");
    let made = fs::create_dir_all(payload.join("sub"))
        .and_then(|()| fs::write(payload.join("a.dll"), b"MZ not really"))
        .and_then(|()| fs::write(payload.join("sub/b.txt"), b"text"));
    if made.is_err() {
        return;
    }
    let spec = dir.path().join("spec.toml");
    if fs::write(&spec, data).is_err() {
        return;
    }
    let _ = pkgtool::spec::load(&spec);
});
