//! Windows-style switches on the `hotfix` command line, accepted case-insensitively beside
//! the long options: `/B:QFE` and `/B:<BASELINE>QFE` become the hidden `--b-switch VALUE`
//! before clap parses the rest. Other switches of the old installers are refused as usage
//! errors until they are implemented; an unknown one is a usage error too.
//!
//! A word is taken as a switch when it starts with `/` and its name (up to `:`) is letters
//! only — unless it is the value of an option (`--root /srv`) or, for a name that is not a
//! switch, an existing path (`/pkg`).

use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;

/// The hidden long option `/B:` becomes.
pub const B_SWITCH: &str = "--b-switch";

/// Long options whose value is the next word.
const TAKES_VALUE: &[&str] = &["--root", "--product", "--trust", "--branch", "--fix"];

/// Switches of the old installers that this version does not implement yet.
const LATER: &[&str] = &["quiet", "passive", "norestart", "log", "extract", "uninstall"];

/// Rewrites `/B:` switches in `args` (program name first); refuses other switches.
pub fn preprocess(args: Vec<OsString>) -> Result<Vec<OsString>, Error> {
    let mut out = Vec::with_capacity(args.len());
    let mut value_next = false;
    let mut verbatim = false;
    let mut seen_b = false;
    for (i, arg) in args.into_iter().enumerate() {
        let Some(word) = arg.to_str().map(str::to_owned) else {
            out.push(arg);
            value_next = false;
            continue;
        };
        if i == 0 || verbatim || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        if word == "--" {
            verbatim = true;
            out.push(arg);
            continue;
        }
        value_next = TAKES_VALUE.contains(&word.as_str());
        let Some(rest) = word.strip_prefix('/') else {
            out.push(arg);
            continue;
        };
        let (name, value) = match rest.split_once(':') {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
            out.push(arg);
            continue;
        }
        let lower = name.to_ascii_lowercase();
        match (lower.as_str(), value) {
            ("b", Some(v)) => {
                if seen_b {
                    return Err(Error::Usage("/B: given twice; give one branch override".into()));
                }
                seen_b = true;
                out.push(OsString::from(B_SWITCH));
                out.push(OsString::from(v));
            }
            ("b", None) => {
                return Err(Error::Usage("/B needs a value: /B:QFE, or /B:<BASELINE>QFE such as /B:SP1QFE".into()));
            }
            _ if LATER.contains(&lower.as_str()) => {
                return Err(Error::Usage(format!(
                    "the switch {word} is not supported by this version of hotfix yet; use the long options \
                     (see hotfix --help)"
                )));
            }
            _ if Path::new(&word).exists() => out.push(arg),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown switch {word}; hotfix accepts /B:QFE and /B:<BASELINE>QFE (for a file, give its path \
                     as ./{rest})"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(args: &[&str]) -> Result<Vec<String>, Error> {
        let v = args.iter().map(OsString::from).collect();
        preprocess(v).map(|o| o.into_iter().map(|s| s.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn b_switches_become_the_hidden_option_in_any_case() {
        let out = pre(&["hotfix", "--root", "/r", "install", "/tmp/KB4.pkg", "/b:sp1qfe"]).unwrap();
        assert_eq!(out, ["hotfix", "--root", "/r", "install", "/tmp/KB4.pkg", B_SWITCH, "sp1qfe"]);
        let out = pre(&["hotfix", "install", "k.pkg", "/B:QFE"]).unwrap();
        assert_eq!(out[3..], [B_SWITCH, "QFE"]);
    }

    #[test]
    fn option_values_and_paths_are_left_alone() {
        let out = pre(&["hotfix", "--root", "/srv", "install", "/pkgs/KB4.pkg"]).unwrap();
        assert_eq!(out, ["hotfix", "--root", "/srv", "install", "/pkgs/KB4.pkg"]);
        let out = pre(&["hotfix", "install", "--", "/weird"]).unwrap();
        assert_eq!(out[3], "/weird");
    }

    #[test]
    fn unknown_and_later_switches_are_usage_errors() {
        for bad in ["/frobnicate", "/quiet", "/Log:x.log", "/B", "/nosuchswitchhere"] {
            let e = pre(&["hotfix", "install", "k.pkg", bad]).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad}: {e}");
        }
        assert!(pre(&["hotfix", "install", "k", "/B:QFE", "/b:qfe"]).is_err());
    }
}
