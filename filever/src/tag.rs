//! Branch tags: `srv03_sp2_gdr.080813-1204` in `5.2.3790.4354 (srv03_sp2_gdr.080813-1204)`,
//! and the consistency checks between the fixed version and the `FileVersion` string.
//!
//! A tag is the text inside the last parentheses of the string. Before the first `.` it is the
//! build lab and branch, `_`-separated (`srv03`, `sp2`, `gdr`); after it the build stamp. The
//! branch word is the last `_` token after the first that is `gdr`, `qfe`, `ldr` or `rtm`
//! (case-insensitive; also `sp2rtm`-style tokens that carry the service pack in front), so in
//! `srv03_rtm_qfe` the branch is `qfe` and `rtm` is the lab's baseline. `gdr` and
//! `rtm` are GDR, `qfe` and `ldr` are LDR. The tokens before it are the lab; a lab token `spN` or
//! `rtm`, or a last lab token ending in `spN` (`win7sp1`), names the baseline; failing that, the
//! branch word `rtm` means baseline RTM.

use crate::{BranchTag, FileVersionInfo, TagBranch};

/// Decodes the branch tag in a `FileVersion` string; `None` if there is none or it is not
/// recognised (that is not an error: many files have no tag).
///
/// ```
/// let tag = filever::parse_branch_tag("5.2.3790.4354 (srv03_sp2_gdr.080813-1204)").unwrap();
/// assert_eq!(tag.lab, "srv03_sp2");
/// assert_eq!(tag.baseline.as_deref(), Some("SP2"));
/// assert_eq!(tag.branch, filever::TagBranch::Gdr);
/// assert_eq!(tag.stamp.as_deref(), Some("080813-1204"));
/// ```
pub fn parse_branch_tag(file_version_string: &str) -> Option<BranchTag> {
    let open = file_version_string.rfind('(')?;
    let inside = file_version_string.get(open + 1..)?;
    let raw = inside.get(..inside.find(')')?)?.trim();
    if raw.is_empty() || raw.chars().any(|c| c.is_whitespace() || c.is_control() || c == '(') {
        return None;
    }
    let (lab_and_branch, stamp) = match raw.split_once('.') {
        Some((head, stamp)) => (head, (!stamp.is_empty()).then(|| stamp.to_string())),
        None => (raw, None),
    };
    let tokens: Vec<&str> = lab_and_branch.split('_').collect();
    let (index, word, prefix_sp) = tokens
        .iter()
        .enumerate()
        .skip(1)
        .rev()
        .find_map(|(index, token)| branch_token(token).map(|(word, sp)| (index, word, sp)))?;
    let lab_tokens = tokens.get(..index)?;
    if lab_tokens.iter().any(|token| token.is_empty()) {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    let branch = match lower.as_str() {
        "gdr" | "rtm" => TagBranch::Gdr,
        _ => TagBranch::Ldr,
    };
    let baseline = lab_baseline(lab_tokens).or(prefix_sp).or_else(|| (lower == "rtm").then(|| "RTM".to_string()));
    Some(BranchTag {
        raw: raw.to_string(),
        lab: lab_tokens.join("_"),
        baseline,
        branch,
        branch_word: word.to_string(),
        stamp,
    })
}

/// `gdr` → (`gdr`, None); `sp2rtm` → (`rtm`, Some("SP2")).
fn branch_token(token: &str) -> Option<(&str, Option<String>)> {
    let split = token.len().checked_sub(3)?;
    let word = token.get(split..)?;
    if !["gdr", "qfe", "ldr", "rtm"].iter().any(|w| word.eq_ignore_ascii_case(w)) {
        return None;
    }
    let prefix = token.get(..split)?;
    if prefix.is_empty() {
        return Some((word, None));
    }
    service_pack(prefix).filter(|sp| sp.len() == prefix.len()).map(|sp| (word, Some(sp)))
}

/// `sp2` / `SP2` → `SP2`: the whole of `text` must be `sp` and digits.
fn service_pack(text: &str) -> Option<String> {
    let digits = text.get(..2).filter(|p| p.eq_ignore_ascii_case("sp")).and(text.get(2..))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("SP{digits}"))
}

fn lab_baseline(lab: &[&str]) -> Option<String> {
    if let Some(found) = lab
        .iter()
        .skip(1)
        .find_map(|token| if token.eq_ignore_ascii_case("rtm") { Some("RTM".to_string()) } else { service_pack(token) })
    {
        return Some(found);
    }
    // `win7sp1`, `vistasp2`: the service pack at the end of the last lab token.
    let last = lab.last()?.to_ascii_lowercase();
    let at = last.rfind("sp")?;
    if at == 0 {
        return None;
    }
    service_pack(last.get(at..)?)
}

/// The version number at the start of a `FileVersion` string: up to the first space or `(`.
pub(crate) fn leading_version(text: &str) -> &str {
    let end = text.find(|c: char| c.is_whitespace() || c == '(').unwrap_or(text.len());
    text.get(..end).unwrap_or(text)
}

/// Fills `file_version_string` and `tag` of a PE file and checks them against the fixed info.
pub(crate) fn finish_pe(info: &mut FileVersionInfo) {
    info.file_version_string = info.string_tables.iter().find_map(|table| table.get("FileVersion")).map(str::to_string);
    info.tag = info.file_version_string.as_deref().and_then(parse_branch_tag);
    if info.fixed.is_none() && info.string_tables.is_empty() {
        return;
    }
    match (&info.fixed, &info.file_version_string) {
        (_, None) => info.problems.push("no FileVersion string".to_string()),
        (_, Some(text)) if text.trim().is_empty() => info.problems.push("FileVersion string is empty".to_string()),
        (Some(fixed), Some(text)) => {
            let leading = leading_version(text.trim_start());
            if leading != fixed.file_version {
                info.problems.push(format!("fixed version {} differs from string {leading}", fixed.file_version));
            }
        }
        (None, Some(_)) => {}
    }
    for translation in &info.translations {
        let key = translation.replace(' ', "");
        if !info.string_tables.iter().any(|table| table.lang_codepage == key) {
            info.problems.push(format!("Translation {translation} has no string table"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> BranchTag {
        match parse_branch_tag(text) {
            Some(tag) => tag,
            None => panic!("no tag in {text:?}"),
        }
    }

    fn check(text: &str, lab: &str, baseline: Option<&str>, branch: TagBranch, word: &str, stamp: Option<&str>) {
        let t = tag(text);
        assert_eq!(t.lab, lab, "{text}");
        assert_eq!(t.baseline.as_deref(), baseline, "{text}");
        assert_eq!(t.branch, branch, "{text}");
        assert_eq!(t.branch_word, word, "{text}");
        assert_eq!(t.stamp.as_deref(), stamp, "{text}");
    }

    #[test]
    fn a_baseline_word_before_the_branch_word_belongs_to_the_lab() {
        let t = tag("5.2.3790.4354 (srv03_rtm_qfe.080814-0101)");
        assert_eq!(t.branch, TagBranch::Ldr);
        assert_eq!(t.branch_word, "qfe");
        assert_eq!(t.lab, "srv03_rtm");
        assert_eq!(t.baseline.as_deref(), Some("RTM"));
    }

    #[test]
    fn server_2003_tags() {
        use TagBranch::{Gdr, Ldr};
        check("5.2.3790.4354 (srv03_sp2_gdr.080813-1204)", "srv03_sp2", Some("SP2"), Gdr, "gdr", Some("080813-1204"));
        check("5.2.3790.4355 (srv03_sp2_qfe.080814-0101)", "srv03_sp2", Some("SP2"), Ldr, "qfe", Some("080814-0101"));
        check("5.2.3790.0 (srv03_rtm.030324-2048)", "srv03", Some("RTM"), Gdr, "rtm", Some("030324-2048"));
        check("5.2.3790.2180 (srv03_sp1_qfe.050301-1519)", "srv03_sp1", Some("SP1"), Ldr, "qfe", Some("050301-1519"));
        check("5.2.3790.1830 (srv03_sp1_rtm.050324-1447)", "srv03_sp1", Some("SP1"), Gdr, "rtm", Some("050324-1447"));
        check("5.2.3790.3959 (srv03_sp2_rtm.070216-1710)", "srv03_sp2", Some("SP2"), Gdr, "rtm", Some("070216-1710"));
    }

    #[test]
    fn xp_and_later_tags() {
        use TagBranch::{Gdr, Ldr};
        check("5.1.2600.3099 (xpsp_sp2_gdr.070227-2254)", "xpsp_sp2", Some("SP2"), Gdr, "gdr", Some("070227-2254"));
        check("5.1.2600.3100 (xpsp_sp2_qfe.070227-2300)", "xpsp_sp2", Some("SP2"), Ldr, "qfe", Some("070227-2300"));
        check("5.1.2600.2180 (xpsp_sp2_rtm.040803-2158)", "xpsp_sp2", Some("SP2"), Gdr, "rtm", Some("040803-2158"));
        check("5.1.2600.5913 (xpsp_sp3_gdr.091216-1504)", "xpsp_sp3", Some("SP3"), Gdr, "gdr", Some("091216-1504"));
        check("6.1.7600.16385 (win7_rtm.090713-1255)", "win7", Some("RTM"), Gdr, "rtm", Some("090713-1255"));
        check("6.1.7600.16539 (win7_gdr.100226-1909)", "win7", None, Gdr, "gdr", Some("100226-1909"));
        check("6.1.7600.20655 (win7_ldr.100226-1905)", "win7", None, Ldr, "ldr", Some("100226-1905"));
        check("6.1.7601.17514 (win7sp1_rtm.101119-1850)", "win7sp1", Some("SP1"), Gdr, "rtm", Some("101119-1850"));
        check("6.1.7601.21701 (win7sp1_ldr.110315-1505)", "win7sp1", Some("SP1"), Ldr, "ldr", Some("110315-1505"));
        check("6.0.6002.18327 (vistasp2_gdr.101014-0432)", "vistasp2", Some("SP2"), Gdr, "gdr", Some("101014-0432"));
        check("6.0.6002.18005 (lh_sp2rtm.090410-1830)", "lh", Some("SP2"), Gdr, "rtm", Some("090410-1830"));
        check("6.2.9200.16384 (win8_rtm.120725-1247)", "win8", Some("RTM"), Gdr, "rtm", Some("120725-1247"));
        check("6.2.9200.16420 (win8_gdr_soc_ie.120913-1904)", "win8", None, Gdr, "gdr", Some("120913-1904"));
    }

    #[test]
    fn case_spacing_and_position() {
        use TagBranch::{Gdr, Ldr};
        check("5.2.3790.4354 (SRV03_SP2_GDR.080813-1204)", "SRV03_SP2", Some("SP2"), Gdr, "GDR", Some("080813-1204"));
        check("5.2.3790.4354 ( srv03_sp2_qfe.080813-1204 )", "srv03_sp2", Some("SP2"), Ldr, "qfe", Some("080813-1204"));
        check("1.0 (old_gdr.1) built (srv03_sp2_qfe.2)", "srv03_sp2", Some("SP2"), Ldr, "qfe", Some("2"));
        check("5.2.3790.4354 (srv03_sp2_gdr)", "srv03_sp2", Some("SP2"), Gdr, "gdr", None);
        check("(srv03_sp2_gdr.080813-1204)", "srv03_sp2", Some("SP2"), Gdr, "gdr", Some("080813-1204"));
        assert_eq!(tag("5.2.3790.4354 (srv03_sp2_gdr.080813-1204)").raw, "srv03_sp2_gdr.080813-1204");
    }

    #[test]
    fn not_tags() {
        for text in [
            "",
            "5.2.3790.4354",
            "5,30,23,1215",
            "5.01.2600.2180",
            "5.1.2600.5512 (xpsp.080413-2111)",
            "10.0.19041.1 (WinBuild.160101.0800)",
            "6.1.7601.17514 (win7sp1_rtm.101119-1850",
            "5.2.3790.4354 ()",
            "5.2.3790.4354 (gdr.080813-1204)",
            "5.2.3790.4354 (_gdr.080813-1204)",
            "5.2.3790.4354 (srv03__gdr.080813-1204)",
            "5.2.3790.4354 (srv03_gdrx.080813-1204)",
            "5.2.3790.4354 (srv03_xgdr.080813-1204)",
            "5.2.3790.4354 (srv03_spxrtm.080813-1204)",
            "5.2.3790.4354 (built by: gdr)",
            "5.2.3790.4354 (srv03 sp2_gdr.080813-1204)",
            "5.2.3790.4354 (srv03.sp2_gdr)",
            "1.0 (srv03_sp2_gdr.1) (WinBuild.1)",
            "wine-8.0 (é_gdr",
            ")(",
            "(((",
        ] {
            assert_eq!(parse_branch_tag(text), None, "{text:?}");
        }
    }

    #[test]
    fn leading_version_stops_at_space_or_paren() {
        assert_eq!(leading_version("5.2.3790.4354 (srv03_sp2_gdr.080813-1204)"), "5.2.3790.4354");
        assert_eq!(leading_version("5,30,23,1215"), "5,30,23,1215");
        assert_eq!(leading_version("1.0(x)"), "1.0");
        assert_eq!(leading_version(""), "");
    }
}
