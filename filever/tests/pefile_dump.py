#!/usr/bin/env python3
"""Dumps PE version resources with `pefile`, an independent reader, for the filever tests.

Usage: pefile_dump.py FILE...   (run with the venv made by tests/pefile-venv.sh)

Prints one JSON array, one object per file, in argument order:
  {"path": ..., "error": null or text,
   "resources": [  # every RT_VERSION data entry, in directory order (name, then language)
     {"name": "#1" or the name, "name_index": position of the name entry (from 0),
      "lang": 1033 or null,
      "parsed": whether pefile accepted it as a VS_VERSIONINFO,
      "fixed": null or {"file_version": "a.b.c.d", "product_version": "a.b.c.d"},
      "tables": [{"lang_codepage": "040904B0", "entries": [[key, value], ...]}, ...]}]}
pefile keeps a table's entries in a dict, so a repeated key appears once (first position,
last value). pefile itself parses only the first name's resources; this script asks it to
parse each data entry on its own (PE.parse_version_information), so all are described.
"""
import json
import sys

import pefile


def text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def version(ms, ls):
    return "%d.%d.%d.%d" % (ms >> 16, ms & 0xFFFF, ls >> 16, ls & 0xFFFF)


def describe(pe, data_struct):
    for attr in ("VS_VERSIONINFO", "VS_FIXEDFILEINFO", "FileInfo"):
        if hasattr(pe, attr):
            delattr(pe, attr)
    pe.parse_version_information(data_struct)
    out = {"parsed": bool(getattr(pe, "VS_VERSIONINFO", [])), "fixed": None, "tables": []}
    fixed_list = getattr(pe, "VS_FIXEDFILEINFO", [])
    if fixed_list:
        f = fixed_list[0]
        out["fixed"] = {
            "file_version": version(f.FileVersionMS, f.FileVersionLS),
            "product_version": version(f.ProductVersionMS, f.ProductVersionLS),
        }
    file_info = getattr(pe, "FileInfo", [])
    if file_info:
        for block in file_info[0]:
            for table in getattr(block, "StringTable", []):
                out["tables"].append(
                    {
                        "lang_codepage": text(table.LangID),
                        "entries": [[text(k), text(v)] for k, v in table.entries.items()],
                    }
                )
    return out


def label(entry):
    if entry.name is not None:
        return text(entry.name.decode("utf-8", "replace") if isinstance(entry.name, bytes) else entry.name)
    return "#%d" % entry.id


def dump(path):
    out = {"path": path, "error": None, "resources": []}
    try:
        pe = pefile.PE(path, fast_load=True)
        pe.parse_data_directories(
            directories=[pefile.DIRECTORY_ENTRY["IMAGE_DIRECTORY_ENTRY_RESOURCE"]]
        )
    except Exception as err:  # pefile raises PEFormatError and others on broken files
        out["error"] = "%s: %s" % (type(err).__name__, err)
        return out
    root = getattr(pe, "DIRECTORY_ENTRY_RESOURCE", None)
    for type_entry in getattr(root, "entries", []):
        if type_entry.id != pefile.RESOURCE_TYPE["RT_VERSION"]:
            continue
        names = getattr(getattr(type_entry, "directory", None), "entries", [])
        for name_index, name_entry in enumerate(names):
            langs = getattr(getattr(name_entry, "directory", None), "entries", None)
            targets = [(l.id, l) for l in langs] if langs is not None else [(None, name_entry)]
            for lang, entry in targets:
                data = getattr(entry, "data", None)
                struct = getattr(data, "struct", None)
                if struct is None:
                    continue
                item = {"name": label(name_entry), "name_index": name_index, "lang": lang}
                item.update(describe(pe, struct))
                out["resources"].append(item)
    pe.close()
    return out


def main():
    json.dump([dump(path) for path in sys.argv[1:]], sys.stdout, ensure_ascii=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
