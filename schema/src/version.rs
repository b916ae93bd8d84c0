//! Dotted numeric versions (`5.2.3790.4354`), compared field by field.
//!
//! A version is one to eight decimal fields, each fitting in a `u32`, written without
//! leading zeros. Missing trailing fields compare as zero, so `1.2` equals `1.2.0`.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::NameError;

/// Most fields a version may have.
pub const MAX_VERSION_FIELDS: usize = 8;

/// A dotted numeric version.
#[derive(Clone, Debug)]
pub struct Version(Vec<u32>);

impl Version {
    /// Parses `5.2.3790.4`; rejects empty fields, signs, leading zeros and overflow.
    pub fn parse(s: &str) -> Result<Self, NameError> {
        let bad = || NameError::BadVersion(s.escape_debug().to_string());
        let mut fields = Vec::new();
        for part in s.split('.') {
            let digits_only = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            if !digits_only || (part.len() > 1 && part.starts_with('0')) {
                return Err(bad());
            }
            fields.push(part.parse::<u32>().map_err(|_| bad())?);
        }
        if fields.len() > MAX_VERSION_FIELDS {
            return Err(bad());
        }
        Ok(Version(fields))
    }

    /// The numeric fields.
    pub fn fields(&self) -> &[u32] {
        &self.0
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        let n = self.0.len().max(other.0.len());
        (0..n)
            .map(|i| {
                let a = self.0.get(i).copied().unwrap_or(0);
                let b = other.0.get(i).copied().unwrap_or(0);
                a.cmp(&b)
            })
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Version::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Version {
    fn schema_name() -> Cow<'static, str> {
        "Version".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Dotted numeric version: 1 to 8 decimal fields without leading zeros, each below 2^32.",
            "type": "string",
            "pattern": "^(0|[1-9][0-9]{0,9})(\\.(0|[1-9][0-9]{0,9})){0,7}$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn versions_compare_field_by_field_not_as_text() {
        assert!(v("5.2.3790.10") > v("5.2.3790.9"));
        assert!(v("5.2.3790.4354") < v("5.2.3790.5000"));
        assert_eq!(v("1.2"), v("1.2.0"));
        assert!(v("1.2.0.1") > v("1.2"));
    }

    #[test]
    fn versions_reject_non_dotted_numeric() {
        for bad in ["", "1..2", "1.2.", "v1", "1.02", "1,2", "-1", "4294967296", "1.2.3.4.5.6.7.8.9", "1.2a"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
