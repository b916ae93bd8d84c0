//! Text output: one block per file, in the spirit of `filever /v`.
//!
//! Values are printed as found (control characters escaped so one entry stays one line).

use std::fmt::Write as _;

use crate::{BinaryFormat, FileVersionInfo};

/// Width of the label column (a space follows it).
const LABEL: usize = 15;

/// One text block describing `info`, headed by `path_display`; ends with a newline.
///
/// ```text
/// app_sp2_gdr.exe
///   format          PE32+
///   file version    5.2.3790.4354  (fixed)
///   product version 5.2.3790.4354  (fixed)
///   FileVersion     5.2.3790.4354 (srv03_sp2_gdr.080813-1204)
///   branch tag      srv03_sp2_gdr.080813-1204: baseline SP2, branch GDR (gdr), build 080813-1204
///   flags           none  (mask 0x3f)
///   ...
///   [040904b0] CompanyName      Test Corp
///   problems: none
/// ```
pub fn render_text(path_display: &str, info: &FileVersionInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", clean(path_display));
    line(&mut out, "format", info.format.display_name());
    if let Some(fixed) = &info.fixed {
        line(&mut out, "file version", &format!("{}  (fixed)", fixed.file_version));
        line(&mut out, "product version", &format!("{}  (fixed)", fixed.product_version));
    }
    let file_version_label = if info.format == BinaryFormat::Elf32 || info.format == BinaryFormat::Elf64 {
        "fileVersion"
    } else {
        "FileVersion"
    };
    if let Some(text) = &info.file_version_string {
        line(&mut out, file_version_label, &clean(text));
    }
    line(&mut out, "branch tag", &tag_text(info));
    if let Some(fixed) = &info.fixed {
        let flags = if fixed.file_flag_names.is_empty() { "none".to_string() } else { fixed.file_flag_names.join(" ") };
        line(&mut out, "flags", &format!("{flags}  (mask {:#x})", fixed.file_flags_mask));
        line(&mut out, "os", &format!("{}  ({:#x})", fixed.file_os_name, fixed.file_os));
        let subtype = fixed.file_subtype_name.clone().unwrap_or_else(|| format!("{:#x}", fixed.file_subtype));
        line(&mut out, "type", &format!("{}  ({:#x}), subtype {subtype}", fixed.file_type_name, fixed.file_type));
        if fixed.file_date != 0 {
            line(&mut out, "file date", &format!("{:#018x}", fixed.file_date));
        }
    }
    if !info.translations.is_empty() {
        line(&mut out, "translations", &info.translations.join(", "));
    }
    if let Some(note) = &info.elf_package_note {
        match note.as_object() {
            Some(fields) => {
                for (key, value) in fields {
                    let shown = match value {
                        serde_json::Value::String(text) => clean(text),
                        other => clean(&other.to_string()),
                    };
                    line(&mut out, &format!("note {}", clean(key)), &shown);
                }
            }
            None => line(&mut out, "package note", &clean(&note.to_string())),
        }
    }
    if let Some(id) = &info.build_id {
        line(&mut out, "build id", id);
    }
    for table in &info.string_tables {
        let width = table.entries.iter().map(|(key, _)| clean(key).chars().count()).max().unwrap_or(0);
        if table.entries.is_empty() {
            let _ = writeln!(out, "  [{}] (no strings)", clean(&table.lang_codepage));
        }
        for (key, value) in &table.entries {
            let text = format!("  [{}] {:<width$}  {}", clean(&table.lang_codepage), clean(key), clean(value));
            let _ = writeln!(out, "{}", text.trim_end());
        }
    }
    if info.problems.is_empty() {
        out.push_str("  problems: none\n");
    } else {
        out.push_str("  problems:\n");
        for problem in &info.problems {
            let _ = writeln!(out, "    - {}", clean(problem));
        }
    }
    out
}

fn line(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "  {label:<LABEL$} {value}");
}

fn tag_text(info: &FileVersionInfo) -> String {
    let Some(tag) = &info.tag else {
        return "none".to_string();
    };
    let mut text = format!("{}: ", clean(&tag.raw));
    if let Some(baseline) = &tag.baseline {
        let _ = write!(text, "baseline {baseline}, ");
    }
    let _ = write!(text, "branch {} ({})", tag.branch.as_str(), tag.branch_word);
    if let Some(stamp) = &tag.stamp {
        let _ = write!(text, ", build {}", clean(stamp));
    }
    text
}

/// Escapes control characters (newlines, NULs, ...) so a value stays on one line.
fn clean(text: &str) -> String {
    if text.chars().any(char::is_control) {
        text.chars()
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() { c.escape_default().collect() } else { vec![c] };
                escaped
            })
            .collect()
    } else {
        text.to_string()
    }
}
