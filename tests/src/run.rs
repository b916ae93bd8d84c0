//! Runs the built `pkgtool` and `hotfix` binaries as processes and captures what they say.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

/// The directory holding the workspace's binaries: `HOTFIX_BIN_DIR`, or the profile
/// directory this test executable was built into (`target/<profile>/`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HOTFIX_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("the test executable has a path");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(|deps| deps.parent())
        .map(PathBuf::from)
        .expect("test executable lives in target/<profile>/deps")
}

/// The path of a workspace binary, which must have been built first.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} is not built: run `cargo build --workspace --bins` first (the README's test command does)",
        p.display()
    );
    p
}

/// What a finished process said.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// Panics with the whole output unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs `name` with `args`.
pub fn run<I, S>(name: &str, args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(bin(name)).args(args).env_remove("SOURCE_DATE_EPOCH").output().expect("the binary runs");
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `pkgtool` with `args`.
pub fn pkgtool<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run("pkgtool", args)
}

/// Runs the shell command line `line` on a pseudo-terminal (util-linux `script`), typing
/// `answer`: its exit code and what the terminal showed. `None` when `script` is not
/// installed (the caller skips with a message).
pub fn on_a_terminal(line: &str, answer: &str) -> Option<(i32, String)> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = match Command::new("script")
        .args(["-qec", line, "/dev/null"])
        .env_remove("HOTFIX_ROOT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("script does not run: {e}"),
    };
    child.stdin.take().expect("piped stdin").write_all(answer.as_bytes()).expect("type the answer");
    let out = child.wait_with_output().expect("script runs");
    Some((out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned()))
}
