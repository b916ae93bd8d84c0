//! Windows-style switches (update.exe, wusa.exe) on the `hotfix` and self-contained
//! installer command lines, accepted case-insensitively beside the long options: each is
//! rewritten into its long option before clap parses the rest (see [`SWITCHES`] for the
//! table). An unknown switch is a usage error that lists the valid ones.
//!
//! A word is taken as a switch when it starts with `/` and its name (up to `:`) is letters
//! only, or is `/?` — unless it is the value of an option (`--root /srv`), follows `--`, or,
//! for a name that is not a switch, is an existing path (`/pkg`).
//!
//! For the `hotfix` command line, [`preprocess`] also accepts wusa's form
//! `hotfix [OPTIONS] PKG [SWITCHES]`: a first positional word that is no subcommand but an
//! existing file is taken as `install PKG`.

use std::ffi::OsString;
use std::path::Path;

use crate::error::Error;

/// The hidden long option `/B:` becomes.
pub const B_SWITCH: &str = "--b-switch";

/// One Windows-style switch.
#[derive(Clone, Copy, Debug)]
pub struct Switch {
    /// Its name, lower case, without the `/`.
    pub name: &'static str,
    /// How its value is shown (`FILE`), if it takes one after a `:`.
    pub value: Option<&'static str>,
    /// The long option it becomes.
    pub long: &'static str,
    /// What it does.
    pub help: &'static str,
}

/// Every switch, in the order the help lists them.
pub const SWITCHES: &[Switch] = &[
    Switch { name: "quiet", value: None, long: "--quiet", help: "no output but errors; no progress bar" },
    Switch { name: "passive", value: None, long: "--passive", help: "progress bar only, no other output but errors" },
    Switch {
        name: "norestart",
        value: None,
        long: "--norestart",
        help: "never restart (this tool never does); a needed restart is still reported, exit 3",
    },
    Switch {
        name: "forcerestart",
        value: None,
        long: "--forcerestart",
        help: "report a restart as required after a successful change (exit 3); this tool never restarts itself",
    },
    Switch { name: "log", value: Some("FILE"), long: "--log", help: "append a full log of the operation to FILE" },
    Switch {
        name: "extract",
        value: Some("DIR"),
        long: "--extract",
        help: "verify the package and extract its variants to DIR/<baseline>/<branch>/<component>/",
    },
    Switch { name: "uninstall", value: None, long: "--uninstall", help: "remove the package this file carries" },
    Switch {
        name: "b",
        value: Some("QFE"),
        long: B_SWITCH,
        help: "/B:QFE puts the package's components on LDR; /B:<BASELINE>QFE (e.g. /B:SP1QFE) only at that baseline",
    },
    Switch {
        name: "whatif",
        value: None,
        long: "--what-if",
        help: "say what the package is and what installing it would do, and change nothing",
    },
    Switch { name: "help", value: None, long: "--help", help: "show the help" },
];

/// An older update.exe switch that scripts still pass and that has a meaning here: it
/// becomes `words` (`{}` is its value).
#[derive(Clone, Copy, Debug)]
pub struct Legacy {
    /// Its name, lower case, without the `/`.
    pub name: &'static str,
    /// How its value is shown, if it takes one after a `:` (`optional`: it may).
    pub value: Option<&'static str>,
    /// Whether the value may be left out (`/warnrestart` or `/warnrestart:30`).
    pub optional: bool,
    /// What it becomes on the `hotfix` command line.
    pub words: &'static [&'static str],
    /// Whether it also means something to a self-contained installer.
    pub installer: bool,
    /// What it does here.
    pub help: &'static str,
}

/// The older update.exe switches accepted, in the order the help lists them.
pub const LEGACY: &[Legacy] = &[
    Legacy {
        name: "u",
        value: None,
        optional: false,
        words: &["--passive"],
        installer: true,
        help: "unattended: /passive",
    },
    Legacy {
        name: "z",
        value: None,
        optional: false,
        words: &["--norestart"],
        installer: true,
        help: "no restart: /norestart",
    },
    Legacy {
        name: "x",
        value: Some("DIR"),
        optional: false,
        words: &["--extract", "{}"],
        installer: true,
        help: "/extract:DIR",
    },
    Legacy {
        name: "warnrestart",
        value: Some("SECONDS"),
        optional: true,
        words: &["--norestart"],
        installer: true,
        help: "this tool never restarts: a needed restart is reported (exit 3), like /norestart",
    },
    Legacy {
        name: "promptrestart",
        value: None,
        optional: false,
        words: &["--norestart"],
        installer: true,
        help: "likewise: the restart is reported, never done or prompted for",
    },
    Legacy {
        name: "l",
        value: None,
        optional: false,
        words: &["list"],
        installer: false,
        help: "hotfix only: list the installed packages (`list`)",
    },
    Legacy {
        name: "kb",
        value: Some("ID"),
        optional: false,
        words: &["query", "--fix", "{}"],
        installer: false,
        help: "hotfix only: is fix ID present? `query --fix ID` (exit 0 present, 9 absent)",
    },
];

/// Older update.exe switches that have no meaning here, with what to do instead.
pub const REFUSED: &[(&str, &str)] = &[
    (
        "n",
        "/n (/nobackup) cannot be turned off: the store is what makes uninstall in any order and a later LDR migration possible",
    ),
    (
        "nobackup",
        "/nobackup cannot be turned off: the store is what makes uninstall in any order and a later LDR migration possible",
    ),
    (
        "o",
        "/o (/overwriteoem) has no meaning: a file hotfix does not own is never overwritten, the install is refused as a conflict",
    ),
    (
        "overwriteoem",
        "/overwriteoem has no meaning: a file hotfix does not own is never overwritten, the install is refused as a conflict",
    ),
    (
        "f",
        "/f (/forceappsclose) has no meaning: this tool closes no application; a needed restart is reported (exit 3)",
    ),
    (
        "forceappsclose",
        "/forceappsclose has no meaning: this tool closes no application; a needed restart is reported (exit 3)",
    ),
    (
        "integrate",
        "/integrate (slipstreaming) is not supported: install the baseline package, then the updates, into the root",
    ),
    ("er", "/ER has no meaning: errors go to standard error and the root's log (.servicing/log)"),
    ("verbose", "/verbose has no meaning: use /log:FILE for a full log of the operation"),
];

/// Long options whose value is the next word.
const TAKES_VALUE: &[&str] = &["--root", "--product", "--trust", "--branch", "--fix", "--log", "--extract", B_SWITCH];

/// The valid switches, as a usage error lists them.
pub fn valid_list() -> String {
    let mut out: Vec<String> = Vec::new();
    for s in SWITCHES {
        match (s.name, s.value) {
            ("b", _) => {
                out.push("/B:QFE".into());
                out.push("/B:<BASELINE>QFE".into());
            }
            (n, Some(v)) => out.push(format!("/{n}:{v}")),
            (n, None) => out.push(format!("/{n}")),
        }
    }
    out.push("/?".into());
    out.join(", ")
}

/// The switch table's heading.
pub const TABLE_HEADING: &str = "Windows-style switches (case-insensitive; each is the long option named):";

/// The switch table's rows: the switch as typed, the long option it means, what it does
/// (for `--help` and, rendered as a man page section, the man pages).
pub fn table() -> Vec<(String, String, &'static str)> {
    SWITCHES
        .iter()
        .map(|s| {
            let shown = match (s.name, s.value) {
                ("b", _) => "/B:QFE, /B:<BASELINE>QFE".to_string(),
                ("help", _) => "/help, /?".to_string(),
                (n, Some(v)) => format!("/{n}:{v}"),
                (n, None) => format!("/{n}"),
            };
            let long = if s.long == B_SWITCH {
                "--branch QFE|<BASELINE>QFE".to_string()
            } else {
                match s.value {
                    Some(v) => format!("{} {v}", s.long),
                    None => s.long.to_string(),
                }
            };
            (shown, long, s.help)
        })
        .chain(LEGACY.iter().map(|l| {
            let shown = match (l.value, l.optional) {
                (Some(v), true) => format!("/{}[:{v}]", l.name),
                (Some(v), false) => format!("/{}:{v}", l.name),
                (None, _) => format!("/{}", l.name),
            };
            let long = l.words.join(" ").replace("{}", l.value.unwrap_or(""));
            (shown, long, l.help)
        }))
        .collect()
}

/// The switch table as help text (for `--help`).
pub fn help_text() -> String {
    let mut out = format!("{TABLE_HEADING}\n");
    for (shown, long, help) in table() {
        out.push_str(&format!("  {shown:<26} {long:<16} {help}\n"));
    }
    out.push_str(REFUSED_LINE);
    out.push('\n');
    out
}

/// What the help says of the update.exe switches that are refused.
pub const REFUSED_LINE: &str = "Refused, saying what to use instead: /n, /nobackup, /o, /overwriteoem, /f, /forceappsclose, /integrate, /ER, /verbose.";

/// How [`preprocess`] treats a first positional word.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// The `hotfix` command line, with these subcommand names: an existing file that is
    /// not one of them is taken as `install FILE`.
    Runtime(&'a [String]),
    /// The self-contained installer's command line: no subcommands.
    Installer,
}

/// Rewrites the switches in `args` (program name first) into long options.
pub fn preprocess(args: Vec<OsString>, mode: Mode<'_>) -> Result<Vec<OsString>, Error> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut value_next = false;
    let mut verbatim = false;
    let mut positional_seen = false;
    let mut seen: Vec<&'static str> = Vec::new();
    for (i, arg) in args.into_iter().enumerate() {
        let Some(word) = arg.to_str().map(str::to_owned) else {
            positional_seen |= !value_next;
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
        if word.starts_with('-') {
            value_next = TAKES_VALUE.contains(&word.as_str());
            out.push(arg);
            continue;
        }
        if let Some(switch) = as_switch(&word, mode)? {
            let (name, words) = switch;
            if seen.contains(&name) {
                return Err(Error::Usage(format!("{word}: the switch /{name} is given twice")));
            }
            seen.push(name);
            // A legacy switch that becomes a command (`/l`, `/kb:`) is the positional word.
            positional_seen |= words.first().is_some_and(|w| !w.to_string_lossy().starts_with('-'));
            out.extend(words);
            continue;
        }
        if !positional_seen {
            positional_seen = true;
            if let Mode::Runtime(subcommands) = mode
                && !subcommands.iter().any(|c| c == &word)
                && Path::new(&word).is_file()
            {
                out.push(OsString::from("install"));
            }
        }
        out.push(arg);
    }
    Ok(out)
}

/// The switch `word` is — its name and the words it becomes; `None` when it is not a
/// switch at all.
fn as_switch(word: &str, mode: Mode<'_>) -> Result<Option<(&'static str, Vec<OsString>)>, Error> {
    let Some(found) = as_current(word)? else { return as_legacy(word, mode) };
    let (s, value) = found;
    let mut words = vec![OsString::from(s.long)];
    words.extend(value.map(OsString::from));
    Ok(Some((s.name, words)))
}

/// `word` as an older update.exe switch ([`LEGACY`], [`REFUSED`]); `None` when it is none
/// (an unknown switch is an error).
fn as_legacy(word: &str, mode: Mode<'_>) -> Result<Option<(&'static str, Vec<OsString>)>, Error> {
    let Some(rest) = word.strip_prefix('/') else { return Ok(None) };
    let (name, value) = match rest.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(None);
    }
    let lower = name.to_ascii_lowercase();
    if let Some((_, why)) = REFUSED.iter().find(|(n, _)| *n == lower) {
        return Err(Error::Usage(format!("{word}: {why}")));
    }
    let Some(l) = LEGACY.iter().find(|l| l.name == lower) else {
        if Path::new(word).exists() {
            return Ok(None);
        }
        return Err(Error::Usage(format!(
            "unknown switch {word}; the valid switches are {} (for a file, give its path as ./{rest})",
            valid_list()
        )));
    };
    if matches!(mode, Mode::Installer) && !l.installer {
        return Err(Error::Usage(format!(
            "{word} has no meaning for a self-contained installer; on the root it services: hotfix --root DIR {}",
            l.words.join(" ").replace("{}", l.value.unwrap_or(""))
        )));
    }
    let value = match (l.value, value) {
        (Some(_), Some(v)) if !v.is_empty() => Some(v),
        (Some(_), None) if l.optional => None,
        (Some(v), _) => return Err(Error::Usage(format!("/{} needs a value: /{}:{v}", l.name, l.name))),
        (None, Some(_)) => return Err(Error::Usage(format!("{word}: the switch /{} takes no value", l.name))),
        (None, None) => None,
    };
    let words = l
        .words
        .iter()
        .filter(|w| **w != "{}" || value.is_some())
        .map(|w| OsString::from(if *w == "{}" { value.unwrap_or_default() } else { w }))
        .collect();
    Ok(Some((l.name, words)))
}

/// `word` as one of [`SWITCHES`], with its value.
fn as_current(word: &str) -> Result<Option<(&'static Switch, Option<String>)>, Error> {
    if word == "/?" {
        return Ok(SWITCHES.iter().find(|s| s.name == "help").map(|s| (s, None)));
    }
    let Some(rest) = word.strip_prefix('/') else { return Ok(None) };
    let (name, value) = match rest.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (rest, None),
    };
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(None);
    }
    let lower = name.to_ascii_lowercase();
    let Some(s) = SWITCHES.iter().find(|s| s.name == lower) else { return Ok(None) };
    match (s.value, value) {
        (Some(_), Some(v)) if !v.is_empty() => Ok(Some((s, Some(v.to_string())))),
        (Some(_), _) if s.name == "b" => {
            Err(Error::Usage("/B needs a value: /B:QFE, or /B:<BASELINE>QFE such as /B:SP1QFE".into()))
        }
        (Some(shown), _) => Err(Error::Usage(format!("/{} needs a value: /{}:{shown}", s.name, s.name))),
        (None, Some(_)) => Err(Error::Usage(format!("{word}: the switch /{} takes no value", s.name))),
        (None, None) => Ok(Some((s, None))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(args: &[&str]) -> Result<Vec<String>, Error> {
        pre_mode(args, Mode::Runtime(&[]))
    }

    fn pre_mode(args: &[&str], mode: Mode<'_>) -> Result<Vec<String>, Error> {
        let v = args.iter().map(OsString::from).collect();
        preprocess(v, mode).map(|o| o.into_iter().map(|s| s.to_string_lossy().into_owned()).collect())
    }

    #[test]
    fn b_switches_become_the_hidden_option_in_any_case() {
        let out = pre(&["hotfix", "--root", "/r", "install", "/tmp/KB4.pkg", "/b:sp1qfe"]).unwrap();
        assert_eq!(out, ["hotfix", "--root", "/r", "install", "/tmp/KB4.pkg", B_SWITCH, "sp1qfe"]);
        let out = pre(&["hotfix", "install", "k.pkg", "/B:QFE"]).unwrap();
        assert_eq!(out[3..], [B_SWITCH, "QFE"]);
    }

    #[test]
    fn every_switch_becomes_its_long_option_in_any_case() {
        let out = pre(&["hotfix", "install", "k", "/QUIET", "/Passive", "/norestart", "/log:/tmp/a:b.log"]).unwrap();
        assert_eq!(out[3..], ["--quiet", "--passive", "--norestart", "--log", "/tmp/a:b.log"]);
        let out = pre_mode(&["KB4.run", "/Extract:out", "/uninstall", "/ForceRestart"], Mode::Installer).unwrap();
        assert_eq!(out[1..], ["--extract", "out", "--uninstall", "--forcerestart"]);
        assert_eq!(pre(&["hotfix", "/?"]).unwrap()[1], "--help");
        assert_eq!(pre(&["hotfix", "/HELP"]).unwrap()[1], "--help");
    }

    #[test]
    fn option_values_and_paths_are_left_alone() {
        let out = pre(&["hotfix", "--root", "/srv", "install", "/pkgs/KB4.pkg"]).unwrap();
        assert_eq!(out, ["hotfix", "--root", "/srv", "install", "/pkgs/KB4.pkg"]);
        let out = pre(&["hotfix", "install", "--", "/weird"]).unwrap();
        assert_eq!(out[3], "/weird");
        let out = pre(&["hotfix", "--log", "/quiet", "list"]).unwrap();
        assert_eq!(out[1..], ["--log", "/quiet", "list"]);
    }

    #[test]
    fn unknown_switches_and_bad_values_are_usage_errors_listing_the_valid_ones() {
        for bad in ["/frobnicate", "/B", "/nosuchswitchhere", "/log", "/log:", "/quiet:yes", "/extract"] {
            let e = pre(&["hotfix", "install", "k.pkg", bad]).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad}: {e}");
        }
        let e = pre(&["hotfix", "/frobnicate"]).unwrap_err().to_string();
        assert!(e.contains("/quiet") && e.contains("/log:FILE") && e.contains("/B:<BASELINE>QFE"), "{e}");
        assert!(pre(&["hotfix", "install", "k", "/B:QFE", "/b:qfe"]).is_err());
        assert!(pre(&["hotfix", "install", "k", "/quiet", "/QUIET"]).is_err());
    }

    #[test]
    fn older_update_exe_switches_become_what_they_mean_here() {
        let out = pre(&["hotfix", "install", "k", "/U", "/z", "/x:out"]).unwrap();
        assert_eq!(out[3..], ["--passive", "--norestart", "--extract", "out"]);
        assert_eq!(pre(&["hotfix", "install", "k", "/warnrestart:30"]).unwrap()[3..], ["--norestart"]);
        assert_eq!(pre(&["hotfix", "install", "k", "/WarnRestart"]).unwrap()[3..], ["--norestart"]);
        assert_eq!(pre(&["hotfix", "--root", "/r", "/l"]).unwrap()[3..], ["list"]);
        assert_eq!(pre(&["hotfix", "--root", "/r", "/KB:kb3"]).unwrap()[3..], ["query", "--fix", "kb3"]);
        let e = pre_mode(&["KB4.run", "/l"], Mode::Installer).unwrap_err().to_string();
        assert!(e.contains("no meaning for a self-contained installer") && e.contains("hotfix --root DIR list"), "{e}");
        assert_eq!(pre_mode(&["KB4.run", "/u"], Mode::Installer).unwrap()[1..], ["--passive"]);
    }

    #[test]
    fn update_exe_switches_without_a_meaning_here_are_refused_saying_why() {
        let e = pre(&["hotfix", "install", "k", "/nobackup"]).unwrap_err().to_string();
        assert!(e.contains("the store is what makes uninstall"), "{e}");
        let e = pre(&["hotfix", "install", "k", "/N"]).unwrap_err().to_string();
        assert!(e.contains("cannot be turned off"), "{e}");
        let e = pre(&["hotfix", "install", "k", "/integrate:c:\\x"]).unwrap_err().to_string();
        assert!(e.contains("slipstreaming"), "{e}");
    }

    #[test]
    fn a_package_file_first_means_install() {
        let dir = std::env::temp_dir();
        let file = dir.join(format!("switches-test-{}.pkg", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let f = file.to_str().unwrap();
        let subs = ["install".to_string(), "list".to_string()];
        let out = pre_mode(&["hotfix", "--root", "/r", f, "/quiet"], Mode::Runtime(&subs)).unwrap();
        assert_eq!(out[1..], ["--root", "/r", "install", f, "--quiet"]);
        let out = pre_mode(&["hotfix", "list", f], Mode::Runtime(&subs)).unwrap();
        assert_eq!(out[1..], ["list", f]);
        std::fs::remove_file(&file).unwrap();
    }
}
