//! PE32 / PE32+ files: finds the `RT_VERSION` resource and hands it to the
//! `VS_VERSIONINFO` parser.
//!
//! Headers and the resource directory tables are read with the `object` crate; RVAs are mapped
//! to file bytes here, clipped to the file, so a truncated file still shows what it has. The
//! resource tree is walked exactly three levels deep (type, name, language), so a directory
//! that points back at itself cannot loop.

use object::LittleEndian as LE;
use object::pe::{IMAGE_DIRECTORY_ENTRY_RESOURCE, IMAGE_NT_OPTIONAL_HDR32_MAGIC, IMAGE_NT_OPTIONAL_HDR64_MAGIC};
use object::read::pe::{
    ImageNtHeaders, ResourceDirectory, ResourceDirectoryEntryData, ResourceDirectoryTable, ResourceNameOrId,
    SectionTable,
};

use crate::{BinaryFormat, FileVersionInfo, versioninfo};

/// `RT_VERSION`.
const RT_VERSION: u16 = 16;
/// At most this many version resources are looked at.
const MAX_CANDIDATES: usize = 64;
/// At most this many resource directory entries are visited under `RT_VERSION` (tables can be
/// shared between entries, so without a budget a small file could make the walk quadratic).
const MAX_VISITS: usize = 4096;
/// A `VS_VERSIONINFO` is at most 65535 bytes (`wLength` is a u16).
const MAX_VERSION_BYTES: usize = 0xffff;

/// Reads a file that starts with `MZ`.
pub(crate) fn read(data: &[u8]) -> FileVersionInfo {
    match object::read::pe::optional_header_magic(data) {
        Ok(IMAGE_NT_OPTIONAL_HDR32_MAGIC) => read_as::<object::pe::ImageNtHeaders32>(data, BinaryFormat::Pe32),
        Ok(IMAGE_NT_OPTIONAL_HDR64_MAGIC) => read_as::<object::pe::ImageNtHeaders64>(data, BinaryFormat::Pe64),
        Ok(magic) => unknown(format!("MZ file with unknown PE optional header magic {magic:#x}")),
        Err(err) => unknown(format!("MZ file without a readable PE header: {err}")),
    }
}

fn unknown(problem: String) -> FileVersionInfo {
    let mut info = FileVersionInfo::empty(BinaryFormat::Unknown);
    info.problems.push(problem);
    info
}

fn read_as<Pe: ImageNtHeaders>(data: &[u8], format: BinaryFormat) -> FileVersionInfo {
    let mut info = FileVersionInfo::empty(format);
    match find_version_resource::<Pe>(data, &mut info.problems) {
        Some(resource) => {
            info.fixed = resource.fixed;
            info.string_tables = resource.string_tables;
            info.translations = resource.translations;
            info.problems.extend(resource.problems);
        }
        None => info.problems.insert(0, "no version resource".to_string()),
    }
    crate::tag::finish_pe(&mut info);
    info
}

/// Maps an RVA to the file bytes from there to the end of its section's raw data (clipped to
/// the file). `None` when no section holds the address in the file.
fn map_rva<'data>(data: &'data [u8], sections: &SectionTable<'data>, rva: u32) -> Option<&'data [u8]> {
    sections.iter().find_map(|section| {
        let offset_in_section = rva.checked_sub(section.virtual_address.get(LE))?;
        let raw_size = section.size_of_raw_data.get(LE);
        if offset_in_section >= raw_size {
            return None;
        }
        let start = usize::try_from(section.pointer_to_raw_data.get(LE).checked_add(offset_in_section)?).ok()?;
        let end = start.checked_add(usize::try_from(raw_size - offset_in_section).ok()?)?;
        data.get(start..end.min(data.len()))
    })
}

/// Where one `RT_VERSION` data entry is.
struct Candidate {
    /// `#1` or the resource's name.
    name: String,
    /// Position of the name entry in the `RT_VERSION` directory.
    name_index: usize,
    /// The language id, when the entry sits at the language level.
    lang: Option<u16>,
    rva: u32,
    size: u32,
}

impl Candidate {
    fn label(&self) -> String {
        match self.lang {
            Some(lang) => format!("{}/{lang:04x}", self.name),
            None => self.name.clone(),
        }
    }

    /// Which language to prefer, as Windows would on an English system: neutral, en-US,
    /// another English, then any (in directory order).
    fn rank(&self) -> u8 {
        match self.lang {
            None | Some(0) => 0,
            Some(0x0409) => 1,
            Some(lang) if lang & 0x3ff == 0x09 => 2,
            Some(_) => 3,
        }
    }
}

fn find_version_resource<Pe: ImageNtHeaders>(
    data: &[u8],
    problems: &mut Vec<String>,
) -> Option<versioninfo::VersionResource> {
    let dos =
        object::pe::ImageDosHeader::parse(data).map_err(|err| problems.push(format!("DOS header: {err}"))).ok()?;
    let mut offset = u64::from(dos.nt_headers_offset());
    let (nt, directories) =
        Pe::parse(data, &mut offset).map_err(|err| problems.push(format!("PE headers: {err}"))).ok()?;
    let sections = nt.sections(data, offset).map_err(|err| problems.push(format!("section table: {err}"))).ok()?;
    let (rsrc_rva, rsrc_size) = directories.get(IMAGE_DIRECTORY_ENTRY_RESOURCE)?.address_range();
    if rsrc_rva == 0 || rsrc_size == 0 {
        return None;
    }
    let Some(rsrc) = map_rva(data, &sections, rsrc_rva) else {
        problems.push(format!("resource directory at RVA {rsrc_rva:#x} is not in the file"));
        return None;
    };
    let directory = ResourceDirectory::new(rsrc);
    let root = directory.root().map_err(|err| problems.push(format!("resource directory: {err}"))).ok()?;
    let mut candidates = version_candidates(directory, &root, problems);
    candidates.sort_by_key(|candidate| (candidate.name_index, candidate.rank()));
    for candidate in &candidates {
        let Some(bytes) = map_rva(data, &sections, candidate.rva) else {
            problems.push(format!(
                "version resource {} at RVA {:#x} is not in the file",
                candidate.label(),
                candidate.rva
            ));
            continue;
        };
        let wanted = usize::try_from(candidate.size).unwrap_or(usize::MAX);
        if bytes.len() < wanted {
            problems.push(format!(
                "version resource {} is truncated: {} of {} bytes present",
                candidate.label(),
                bytes.len(),
                candidate.size
            ));
        }
        let blob = bytes.get(..wanted.min(MAX_VERSION_BYTES)).unwrap_or(bytes);
        let resource = versioninfo::parse(blob);
        if resource.valid {
            // Other languages of the same resource are normal (localised files); other names
            // are not.
            let others = candidates.iter().filter(|c| c.name_index != candidate.name_index).count();
            if others > 0 {
                problems.push(format!(
                    "{others} more version resource(s) under other names than {} not read",
                    candidate.name
                ));
            }
            return Some(resource);
        }
        problems.extend(resource.problems);
    }
    None
}

/// Every data entry under type `RT_VERSION`: any name or id, any language. Problems of the
/// walk are reported up to a few, then counted.
fn version_candidates(
    directory: ResourceDirectory<'_>,
    root: &ResourceDirectoryTable<'_>,
    problems: &mut Vec<String>,
) -> Vec<Candidate> {
    const SHOWN: usize = 8;
    let mut walk_problems = Vec::new();
    let mut visits = 0usize;
    let out = walk_rt_version(directory, root, &mut visits, &mut walk_problems);
    let more = walk_problems.len().saturating_sub(SHOWN);
    problems.extend(walk_problems.into_iter().take(SHOWN));
    if more > 0 {
        problems.push(format!("{more} more problems in the RT_VERSION directory"));
    }
    if visits > MAX_VISITS {
        problems.push(format!("resource tree under RT_VERSION has more than {MAX_VISITS} entries; rest skipped"));
    }
    out
}

fn walk_rt_version(
    directory: ResourceDirectory<'_>,
    root: &ResourceDirectoryTable<'_>,
    visits: &mut usize,
    problems: &mut Vec<String>,
) -> Vec<Candidate> {
    let mut out = Vec::new();
    for type_entry in root.entries {
        if !matches!(type_entry.name_or_id(), ResourceNameOrId::Id(RT_VERSION)) {
            continue;
        }
        if over_budget(visits) {
            return out;
        }
        let names = match type_entry.data(directory) {
            Ok(ResourceDirectoryEntryData::Table(table)) => table,
            Ok(ResourceDirectoryEntryData::Data(_)) => {
                problems.push("RT_VERSION entry is data, not a directory".to_string());
                continue;
            }
            Err(err) => {
                problems.push(format!("RT_VERSION directory: {err}"));
                continue;
            }
        };
        for name_entry in names.entries {
            if over_budget(visits) {
                return out;
            }
            let name_index = *visits;
            let name = entry_label(directory, name_entry.name_or_id());
            match name_entry.data(directory) {
                Ok(ResourceDirectoryEntryData::Table(languages)) => {
                    for lang_entry in languages.entries {
                        if over_budget(visits) {
                            return out;
                        }
                        let lang = match lang_entry.name_or_id() {
                            ResourceNameOrId::Id(id) => Some(id),
                            ResourceNameOrId::Name(_) => None,
                        };
                        let label = format!("{name}/{}", entry_label(directory, lang_entry.name_or_id()));
                        match lang_entry.data(directory) {
                            Ok(ResourceDirectoryEntryData::Data(entry)) => out.push(Candidate {
                                name: name.clone(),
                                name_index,
                                lang,
                                rva: entry.offset_to_data.get(LE),
                                size: entry.size.get(LE),
                            }),
                            Ok(ResourceDirectoryEntryData::Table(_)) => {
                                problems.push(format!("version resource {label} is a directory, not data"));
                            }
                            Err(err) => problems.push(format!("version resource {label}: {err}")),
                        }
                        if out.len() >= MAX_CANDIDATES {
                            return out;
                        }
                    }
                }
                Ok(ResourceDirectoryEntryData::Data(entry)) => out.push(Candidate {
                    name,
                    name_index,
                    lang: None,
                    rva: entry.offset_to_data.get(LE),
                    size: entry.size.get(LE),
                }),
                Err(err) => problems.push(format!("version resource {name}: {err}")),
            }
            if out.len() >= MAX_CANDIDATES {
                return out;
            }
        }
    }
    out
}

/// Counts one visited entry; true once the budget is spent.
fn over_budget(visits: &mut usize) -> bool {
    *visits += 1;
    *visits > MAX_VISITS
}

/// `#1`, `#1033` for ids; the name for named entries.
fn entry_label(directory: ResourceDirectory<'_>, name: ResourceNameOrId) -> String {
    match name {
        ResourceNameOrId::Id(id) => format!("#{id}"),
        ResourceNameOrId::Name(name) => match name.data(directory) {
            Ok(units) => {
                let units: Vec<u16> = units.iter().take(64).map(|unit| unit.get(LE)).collect();
                String::from_utf16_lossy(&units)
            }
            Err(_) => "(unreadable name)".to_string(),
        },
    }
}
