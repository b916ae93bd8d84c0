//! Validated names for untrusted strings: identifiers (package, product, component,
//! baseline, fix) and relative file paths that cannot leave the root they are placed in.
//!
//! Every string that comes out of a manifest or a spec passes through one of these
//! newtypes, so code that holds a [`RelPath`] never has to re-check it (FORMAT.md §5).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NameError;

/// Longest identifier, in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Longest relative path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;
/// Longest path component, in bytes.
pub const MAX_PATH_COMPONENT_LEN: usize = 255;
/// The first path component reserved for the runtime's own state under a root.
pub const RESERVED_DIR: &str = ".servicing";

/// An identifier: `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`. Used for package ids, products,
/// components, baselines and fixes; safe as a single directory name. Shared text: a clone
/// costs no allocation (a root's file records name their component and package each).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// Checks `s` against the identifier rule.
    pub fn new(s: &str) -> Result<Self, NameError> {
        let bytes = s.as_bytes();
        let ok_first = bytes.first().is_some_and(|b| b.is_ascii_alphanumeric());
        let ok_rest = bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if s.is_empty() || s.len() > MAX_NAME_LEN || !ok_first || !ok_rest {
            return Err(NameError::BadName(s.to_string()));
        }
        Ok(Name(Arc::from(s)))
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` and `other` name the same fix or package: identifiers of fixes and
    /// packages compare without regard to ASCII case (`kb3` is `KB3`; FORMAT.md §4.2).
    /// The spelling a manifest uses is the one shown.
    pub fn same_as(&self, other: &Name) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Name::new(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Name {
    fn schema_name() -> Cow<'static, str> {
        "Name".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An identifier: a letter or digit, then letters, digits, '.', '_' or '-'; at most 64 bytes.",
            "type": "string",
            "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
        })
    }
}

/// A relative path below a root, with `/` separators. It cannot be empty, absolute, contain
/// `.` or `..` components, empty components, backslashes, colons, NUL or other control
/// characters, or start with the reserved `.servicing` directory.
///
/// Shared text: a clone costs no allocation, so the plan, the transaction record and the
/// inventory's rows of a package of many files hold each path once.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RelPath(Arc<str>);

impl RelPath {
    /// Checks `s` against the path rule (FORMAT.md §5).
    pub fn new(s: &str) -> Result<Self, NameError> {
        let bad = |why: &'static str| Err(NameError::BadPath { path: s.escape_debug().to_string(), why });
        if s.is_empty() {
            return bad("empty path");
        }
        if s.len() > MAX_PATH_LEN {
            return bad("longer than 1024 bytes");
        }
        if s.starts_with('/') {
            return bad("absolute path");
        }
        if s.contains('\\') {
            return bad("contains a backslash");
        }
        if s.contains(':') {
            return bad("contains a colon (drive letter or stream name)");
        }
        if s.chars().any(|c| c.is_control()) {
            return bad("contains NUL or another control character");
        }
        for (i, part) in s.split('/').enumerate() {
            match part {
                "" => return bad("empty path component"),
                "." | ".." => return bad("contains a '.' or '..' component"),
                _ if part.len() > MAX_PATH_COMPONENT_LEN => {
                    return bad("a component is longer than 255 bytes");
                }
                _ if i == 0 && part == RESERVED_DIR => {
                    return bad("the .servicing directory is reserved for the runtime");
                }
                _ => {}
            }
        }
        Ok(RelPath(Arc::from(s)))
    }

    /// The path as text, `/`-separated.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path's components.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RelPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for RelPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelPath::new(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for RelPath {
    fn schema_name() -> Cow<'static, str> {
        "RelPath".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A relative path with '/' separators: no empty, '.' or '..' components, no leading '/', no backslash, colon or control character, not below '.servicing'; at most 1024 bytes.",
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_PATH_LEN,
            "pattern": "^(?!/)(?!\\.servicing(/|$))[^\\\\:\\x00-\\x1f\\x7f]+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_the_usual_identifiers() {
        for ok in ["KB4", "RTM", "SP1", "smtp-transport", "contoso", "KB123456", "a.b_c-d"] {
            assert!(Name::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn names_reject_separators_dots_first_and_empty() {
        for bad in ["", ".hidden", "-x", "a/b", "a b", "..", "é", &"x".repeat(65)] {
            assert!(Name::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_reject_every_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "C:/x",
            "a\0b",
            "a\nb",
            ".servicing/inventory",
            ".servicing",
        ] {
            assert!(RelPath::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn paths_accept_nested_and_dotfiles() {
        for ok in ["bin/kernel.dll", ".config/x", "a/.servicing", "x..y/z"] {
            assert!(RelPath::new(ok).is_ok(), "{ok}");
        }
    }
}
