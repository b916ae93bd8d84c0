//! Every size and count cap of the format in one place (FORMAT.md §7).
//!
//! Readers enforce these before they allocate or decompress; writers refuse to produce a
//! package that a reader with the default limits would reject.

/// Caps a reader applies to a package. `Limits::default()` is the format's own limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest decoded manifest, in bytes.
    pub max_manifest_bytes: u64,
    /// Most zip entries (the manifest and every blob).
    pub max_entries: u64,
    /// Most variants in a package.
    pub max_variants: u64,
    /// Most files across all variants.
    pub max_files: u64,
    /// Largest decoded blob, in bytes.
    pub max_blob_bytes: u64,
    /// Largest package file, stub included, in bytes. Format v1 has no zip64, so every
    /// offset and size fits in 32 bits.
    pub max_package_bytes: u64,
    /// Largest central directory, in bytes.
    pub max_central_directory_bytes: u64,
    /// Largest Zstandard window or LZMA dictionary a blob may ask for, as a power of two;
    /// bounds the decoder's memory. A delta blob's size plus its reference's size must fit
    /// in this window.
    pub max_zstd_window_log: u32,
    /// Largest decoded pack, in bytes: bounds what reading one member costs.
    pub max_pack_bytes: u64,
    /// Longest chain of delta references (a delta of a delta of …).
    pub max_delta_depth: u32,
    /// Most decoded bytes of reference blobs a streaming reader must hold at once: the sum
    /// of the sizes of blobs that are already read and still referenced by a later blob.
    pub max_live_reference_bytes: u64,
}

impl Limits {
    /// The format's limit on a decoded manifest, in bytes (`Limits::default()`'s).
    pub const DEFAULT_MAX_MANIFEST_BYTES: u64 = 64 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // About 190 bytes per file: room for `max_files`.
            max_manifest_bytes: Self::DEFAULT_MAX_MANIFEST_BYTES,
            max_entries: 65_534,
            max_variants: 4_096,
            max_files: 200_000,
            max_blob_bytes: u32::MAX as u64 - 1,
            max_package_bytes: u32::MAX as u64 - 1,
            max_central_directory_bytes: 16 << 20,
            max_zstd_window_log: 27,
            max_pack_bytes: 32 << 20,
            max_delta_depth: 4,
            max_live_reference_bytes: 64 << 20,
        }
    }
}
