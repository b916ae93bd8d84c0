//! Crafting hostile packages: take a valid package apart into entries, change what a test
//! needs (names, sizes, offsets, the manifest, extra or missing entries), put it back
//! together in the canonical layout, and sign it again with the trusted key.

use std::io::{Cursor, Read, Write};

use ed25519_dalek::SigningKey;
use hotfix_schema::Limits;
use hotfix_schema::sigblock::SIG_BLOCK_LEN;
use pkgtool::build::resign;
use pkgtool::zipfmt::{Archive, METHOD_DEFLATE, METHOD_LZMA, METHOD_PPMD, METHOD_ZSTD};

/// One entry, as it will be written.
#[derive(Clone, Debug)]
pub struct RawEntry {
    /// Name bytes (may be anything, for hostile names).
    pub name: Vec<u8>,
    /// Zip method.
    pub method: u16,
    /// CRC-32 as declared.
    pub crc32: u32,
    /// Decoded size as declared.
    pub uncompressed: u32,
    /// Stored bytes.
    pub data: Vec<u8>,
    /// External attributes in the central directory.
    pub external_attrs: u32,
}

/// A package taken apart.
#[derive(Clone, Debug)]
pub struct RawPackage {
    /// Bytes before the archive.
    pub prefix: Vec<u8>,
    /// Entries in order; the first is the manifest.
    pub entries: Vec<RawEntry>,
}

/// A central directory record as it will be written; tests may change it before writing.
#[derive(Clone, Debug)]
pub struct CdRecord {
    /// Name bytes.
    pub name: Vec<u8>,
    /// Zip method.
    pub method: u16,
    /// CRC-32.
    pub crc32: u32,
    /// Stored size.
    pub compressed: u32,
    /// Decoded size.
    pub uncompressed: u32,
    /// Local header offset.
    pub offset: u32,
    /// External attributes.
    pub external_attrs: u32,
}

fn put16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn put32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn needed(method: u16) -> u16 {
    if matches!(method, METHOD_ZSTD | METHOD_LZMA | METHOD_PPMD) { 63 } else { 20 }
}
fn flags(method: u16) -> u16 {
    if method == METHOD_LZMA { (1 << 11) | 2 } else { 1 << 11 }
}

impl RawPackage {
    /// Takes a valid package apart.
    pub fn parse(bytes: &[u8]) -> RawPackage {
        let archive =
            Archive::parse(&mut Cursor::new(bytes), &Limits::default()).expect("a valid package to start from");
        let entries = archive
            .entries
            .iter()
            .map(|e| RawEntry {
                name: e.name.as_bytes().to_vec(),
                method: e.method,
                crc32: e.crc32,
                uncompressed: e.uncompressed as u32,
                data: bytes[e.data_offset() as usize..e.end() as usize].to_vec(),
                external_attrs: 0o100_644 << 16,
            })
            .collect();
        RawPackage { prefix: bytes[..archive.prefix_len as usize].to_vec(), entries }
    }

    /// The manifest as JSON.
    pub fn manifest(&self) -> serde_json::Value {
        let mut json = Vec::new();
        let data = &self.entries[0].data[..];
        if self.entries[0].method == METHOD_ZSTD {
            zstd::stream::read::Decoder::new(data)
                .and_then(|mut d| d.read_to_end(&mut json))
                .expect("manifest decodes");
        } else {
            flate2::read::DeflateDecoder::new(data).read_to_end(&mut json).expect("manifest inflates");
        }
        serde_json::from_slice(&json).expect("manifest is JSON")
    }

    /// Replaces the manifest entry with `data` under `method`, declaring `json` as what it
    /// decodes to (whatever it really decodes to).
    pub fn set_manifest_entry(&mut self, method: u16, data: Vec<u8>, json: &[u8]) {
        let e = &mut self.entries[0];
        e.data = data;
        e.method = method;
        e.crc32 = crc32fast::hash(json);
        e.uncompressed = json.len() as u32;
    }

    /// Replaces the manifest with `json` (any bytes), deflated.
    pub fn set_manifest_bytes(&mut self, json: &[u8]) {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(json).expect("deflate");
        let e = &mut self.entries[0];
        e.data = enc.finish().expect("deflate");
        e.method = METHOD_DEFLATE;
        e.crc32 = crc32fast::hash(json);
        e.uncompressed = json.len() as u32;
    }

    /// Replaces the manifest.
    pub fn set_manifest(&mut self, v: &serde_json::Value) {
        self.set_manifest_bytes(&serde_json::to_vec(v).expect("serialize"));
    }

    /// Writes the package in the canonical layout, lets `tweak` change the central
    /// directory records, and signs the result with `key`.
    pub fn write(&self, key: &SigningKey, tweak: impl FnOnce(&mut Vec<CdRecord>)) -> Vec<u8> {
        let mut out = self.prefix.clone();
        let mut cd = Vec::new();
        for e in &self.entries {
            let offset = out.len() as u32;
            put32(&mut out, 0x0403_4b50);
            put16(&mut out, needed(e.method));
            put16(&mut out, flags(e.method));
            put16(&mut out, e.method);
            put16(&mut out, 0);
            put16(&mut out, (1 << 5) | 1);
            put32(&mut out, e.crc32);
            put32(&mut out, e.data.len() as u32);
            put32(&mut out, e.uncompressed);
            put16(&mut out, e.name.len() as u16);
            put16(&mut out, 0);
            out.extend_from_slice(&e.name);
            out.extend_from_slice(&e.data);
            cd.push(CdRecord {
                name: e.name.clone(),
                method: e.method,
                crc32: e.crc32,
                compressed: e.data.len() as u32,
                uncompressed: e.uncompressed,
                offset,
                external_attrs: e.external_attrs,
            });
        }
        tweak(&mut cd);
        let cd_offset = out.len() as u32;
        for r in &cd {
            put32(&mut out, 0x0201_4b50);
            put16(&mut out, (3 << 8) | 63);
            put16(&mut out, needed(r.method));
            put16(&mut out, flags(r.method));
            put16(&mut out, r.method);
            put16(&mut out, 0);
            put16(&mut out, (1 << 5) | 1);
            put32(&mut out, r.crc32);
            put32(&mut out, r.compressed);
            put32(&mut out, r.uncompressed);
            put16(&mut out, r.name.len() as u16);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put16(&mut out, 0);
            put32(&mut out, r.external_attrs);
            put32(&mut out, r.offset);
            out.extend_from_slice(&r.name);
        }
        let cd_size = out.len() as u32 - cd_offset;
        put32(&mut out, 0x0605_4b50);
        put16(&mut out, 0);
        put16(&mut out, 0);
        put16(&mut out, cd.len() as u16);
        put16(&mut out, cd.len() as u16);
        put32(&mut out, cd_size);
        put32(&mut out, cd_offset);
        put16(&mut out, SIG_BLOCK_LEN as u16);
        out.extend_from_slice(&pkgtool_sig_head(key));
        out.extend_from_slice(&[b'0'; hotfix_schema::sigblock::SIGNATURE_LEN]);
        resign(&mut out, key);
        out
    }
}

fn pkgtool_sig_head(key: &SigningKey) -> Vec<u8> {
    hotfix_schema::sigblock::SigBlock::header(pkgtool::keys::key_id(&key.verifying_key()))
}

/// Replaces every occurrence of `from` by `to` (same length) and signs again.
pub fn patch_all(bytes: &[u8], from: &[u8], to: &[u8], key: &SigningKey) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "patches keep the length");
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut hits = 0;
    while i + from.len() <= out.len() {
        if &out[i..i + from.len()] == from {
            out[i..i + from.len()].copy_from_slice(to);
            hits += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(hits > 0, "nothing to patch");
    resign(&mut out, key);
    out
}

impl RawPackage {
    /// Replaces the last blob — one no delta references — by `frame`, a zstd frame that the
    /// manifest is made to declare as decoding to `size` bytes with CRC-32 `crc32` (the
    /// blob's encoding and size, the sizes of the files that use it, the entry's method,
    /// size and CRC-32), under the blob's old name: the manifest still passes every rule
    /// of FORMAT.md §4.3, so only the signature or decoding the blob can tell.
    pub fn replace_last_blob(&mut self, frame: Vec<u8>, size: u64, crc32: u32) {
        let blobs = self.manifest()["blobs"].as_array().map_or(0, Vec::len);
        self.replace_blob(blobs - 1, frame, size, crc32);
    }

    /// [`RawPackage::replace_last_blob`] for blob `at` (in the manifest's order), which no
    /// delta references and which is not a pack.
    pub fn replace_blob(&mut self, at: usize, frame: Vec<u8>, size: u64, crc32: u32) {
        let mut m = self.manifest();
        let blobs = m["blobs"].as_array().expect("blobs");
        let sha = blobs[at]["sha256"].clone();
        assert!(blobs.iter().all(|b| b.get("reference") != Some(&sha)), "the blob is no delta's reference");
        assert!(blobs[at].get("members").is_none(), "the blob is not a pack");
        let blob = m["blobs"][at].as_object_mut().expect("a blob object");
        blob.insert("size".into(), size.into());
        blob.insert("encoding".into(), "zstd".into());
        blob.remove("reference");
        for v in m["variants"].as_array_mut().expect("variants") {
            for f in v["files"].as_array_mut().expect("files") {
                if f["sha256"] == sha {
                    f["size"] = size.into();
                }
            }
        }
        self.set_manifest(&m);
        let e = &mut self.entries[at + 1];
        e.data = frame;
        e.method = METHOD_ZSTD;
        e.crc32 = crc32;
        e.uncompressed = u32::try_from(size).expect("a size without zip64");
    }
}

/// A forged signature: `bytes` (which carry the key id of the key they were written with)
/// signed again by `forger`.
pub fn forge(bytes: &mut Vec<u8>, forger: &SigningKey) {
    resign(bytes, forger);
}
