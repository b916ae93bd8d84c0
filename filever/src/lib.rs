//! Reads version resources and branch tags from PE and ELF binaries.
