//! The snapshot file: a consistent image of the physical store (values still barrier
//! ciphertext, so a snapshot is useless without the seal's root key), in a gzip-compressed
//! tar archive shaped so that Vault's and OpenBao's clients accept it
//! (`bao operator raft snapshot save` checks that the archive ends with a non-empty
//! `SHA256SUMS.sealed`).
//!
//! | member | what |
//! |---|---|
//! | `meta.json` | the header: `format` (`authmount-snapshot`), `version` (1), `cluster_id` of the server that made it (empty for a core without a seal), `seal_type`, `storage_type`, `created` (Unix seconds), `entries` (how many) |
//! | `state.bin` | the entries, sorted by key: for each, the key's length (4 bytes, big-endian), the key (UTF-8), the value's length (4 bytes, big-endian), the value |
//! | `SHA256SUMS` | `<sha256 hex>  meta.json` and `<sha256 hex>  state.bin`, one a line |
//! | `SHA256SUMS.sealed` | `SHA256SUMS` sealed (XChaCha20-Poly1305) under the root key of the server that made it, as JSON `{"seal_type", "root_key_id", "sealed"}` (`sealed`: base64; for a core without a seal, `SHA256SUMS` itself) |
//!
//! Reading checks, in order: a well-formed gzip and tar archive with all four members (a
//! truncated or damaged file fails here), the header's format and version, each member's
//! SHA-256 against `SHA256SUMS`, and the entries against the header's count. Whether the
//! snapshot comes from THIS server (its cluster id, and `SHA256SUMS.sealed` opening with this
//! server's root key) is the seal's question ([`crate::seal::Seal::restore`]).
//!
//! The design follows Vault's raft snapshots (`SHA256SUMS` and `SHA256SUMS.sealed` beside
//! the data); the members and their contents are ours.

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The header's `format`.
pub const FORMAT: &str = "authmount-snapshot";
/// The header's `version` this server writes and reads.
pub const VERSION: u32 = 1;
/// The largest snapshot read, in bytes once decompressed (a guard against a decompression
/// bomb; far above any auth server's store).
pub const MAX_UNPACKED_BYTES: u64 = 1024 * 1024 * 1024;

const META: &str = "meta.json";
const STATE: &str = "state.bin";
const SUMS: &str = "SHA256SUMS";
const SEALED_SUMS: &str = "SHA256SUMS.sealed";

/// The header of a snapshot (`meta.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version ([`VERSION`]).
    pub version: u32,
    /// The cluster id of the server that made it (`sys/seal-status`'s `cluster_id`); empty
    /// for a core without a seal.
    pub cluster_id: String,
    /// The seal type of that server: `shamir`, `static`, `none`.
    pub seal_type: String,
    /// Its storage type (`sqlite`, `inmem`).
    pub storage_type: String,
    /// When it was made, Unix seconds.
    pub created: i64,
    /// How many entries `state.bin` holds.
    pub entries: u64,
}

/// `SHA256SUMS` as sealed by the server that made the snapshot (`SHA256SUMS.sealed`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SealedSums {
    /// The seal type that sealed it (`none`: `sealed` is the sums in the clear).
    pub seal_type: String,
    /// The static key id (empty for Shamir and none).
    pub root_key_id: String,
    /// base64 of nonce ‖ ciphertext ‖ tag (or of the clear sums for `none`).
    pub sealed: String,
}

/// A snapshot read back and checked for integrity (not yet for provenance).
#[derive(Debug)]
pub struct Snapshot {
    /// The header.
    pub meta: Meta,
    /// The physical entries, sorted by key.
    pub entries: Vec<(String, Vec<u8>)>,
    /// The `SHA256SUMS` text.
    pub sums: Vec<u8>,
    /// `SHA256SUMS.sealed`.
    pub sealed_sums: SealedSums,
}

/// The `SHA256SUMS` text of these two members.
fn sums_text(meta: &[u8], state: &[u8]) -> Vec<u8> {
    format!(
        "{}  {META}\n{}  {STATE}\n",
        hex::encode(Sha256::digest(meta)),
        hex::encode(Sha256::digest(state))
    )
    .into_bytes()
}

fn encode_entries(entries: &[(String, Vec<u8>)]) -> Result<Vec<u8>> {
    let size = entries.iter().map(|(k, v)| 8 + k.len() + v.len()).sum();
    let mut out = Vec::with_capacity(size);
    for (key, value) in entries {
        for part in [key.as_bytes(), value.as_slice()] {
            let len = u32::try_from(part.len())
                .map_err(|_| Error::internal(format!("entry {key:?} is too large")))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    Ok(out)
}

fn decode_entries(mut state: &[u8]) -> std::result::Result<Vec<(String, Vec<u8>)>, String> {
    fn take<'a>(state: &mut &'a [u8]) -> std::result::Result<&'a [u8], String> {
        if state.len() < 4 {
            return Err("an entry is cut short".into());
        }
        let (len, rest) = state.split_at(4);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if rest.len() < len {
            return Err("an entry is cut short".into());
        }
        let (part, rest) = rest.split_at(len);
        *state = rest;
        Ok(part)
    }
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    while !state.is_empty() {
        let key = std::str::from_utf8(take(&mut state)?)
            .map_err(|_| "a key is not UTF-8".to_string())?
            .to_string();
        let value = take(&mut state)?.to_vec();
        if entries.last().is_some_and(|(last, _)| *last >= key) {
            return Err(format!("the keys are not sorted and unique at {key:?}"));
        }
        entries.push((key, value));
    }
    Ok(entries)
}

/// Writes a snapshot of `entries` with header `meta` (its `entries` count is set here);
/// `seal_sums` seals the `SHA256SUMS` text. Errors: 500 when an entry is over 4 GiB or the
/// archive cannot be written; those of `seal_sums`.
pub fn write(
    mut meta: Meta,
    entries: &[(String, Vec<u8>)],
    seal_sums: impl FnOnce(&[u8]) -> Result<SealedSums>,
) -> Result<Vec<u8>> {
    meta.entries = entries.len() as u64;
    let meta_bytes = serde_json::to_vec_pretty(&meta).map_err(Error::internal)?;
    let state = encode_entries(entries)?;
    let sums = sums_text(&meta_bytes, &state);
    let sealed = serde_json::to_vec(&seal_sums(&sums)?).map_err(Error::internal)?;
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut archive = tar::Builder::new(gz);
    for (name, body) in [
        (META, &meta_bytes),
        (STATE, &state),
        (SUMS, &sums),
        (SEALED_SUMS, &sealed),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(body.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(meta.created.max(0) as u64);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, name, body.as_slice())
            .map_err(|e| Error::internal(format!("writing the snapshot: {e}")))?;
    }
    archive
        .into_inner()
        .and_then(|gz| gz.finish())
        .map_err(|e| Error::internal(format!("writing the snapshot: {e}")))
}

fn invalid(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!(
        "the snapshot is not a valid authmount snapshot ({why}): a truncated or corrupted file? \
         Nothing was restored"
    ))
}

/// Reads and checks a snapshot (see the module documentation for the checks). Errors: 400
/// naming what is wrong (truncated or corrupted, a checksum that does not match, another
/// format or version); nothing else happens.
pub fn read(bytes: &[u8]) -> Result<Snapshot> {
    if bytes.is_empty() {
        return Err(invalid("the file is empty"));
    }
    // Decompressed whole first: the gzip trailer's CRC-32 and length are checked only at the
    // end of the stream, which the tar reader alone would never reach.
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(MAX_UNPACKED_BYTES + 1)
        .read_to_end(&mut unpacked)
        .map_err(invalid)?;
    if unpacked.len() as u64 > MAX_UNPACKED_BYTES {
        return Err(invalid(format!(
            "more than {MAX_UNPACKED_BYTES} bytes once decompressed"
        )));
    }
    let mut archive = tar::Archive::new(unpacked.as_slice());
    let mut members: [Option<Vec<u8>>; 4] = Default::default();
    let names = [META, STATE, SUMS, SEALED_SUMS];
    let entries = archive.entries().map_err(invalid)?;
    // What the members may still hold: the unpacked size bounds them all together (a sparse
    // or otherwise expanding member is refused by its type before it is read).
    let mut budget = unpacked.len() as u64;
    for entry in entries {
        let entry = entry.map_err(invalid)?;
        let name = entry.path().map_err(invalid)?.to_string_lossy().to_string();
        let Some(slot) = names.iter().position(|n| *n == name) else {
            return Err(invalid(format!("unexpected member {name:?}")));
        };
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(invalid(format!("member {name:?} is not a regular file")));
        }
        let mut body = Vec::new();
        entry
            .take(budget + 1)
            .read_to_end(&mut body)
            .map_err(invalid)?;
        if body.len() as u64 > budget {
            return Err(invalid(format!("member {name:?} is larger than the file")));
        }
        budget -= body.len() as u64;
        if members[slot].replace(body).is_some() {
            return Err(invalid(format!("member {name:?} twice")));
        }
    }
    let [Some(meta_bytes), Some(state), Some(sums), Some(sealed)] = members else {
        let missing: Vec<&str> = names
            .iter()
            .zip(&members)
            .filter(|(_, m)| m.is_none())
            .map(|(n, _)| *n)
            .collect();
        return Err(invalid(format!("missing {}", missing.join(", "))));
    };
    let meta: Meta = serde_json::from_slice(&meta_bytes)
        .map_err(|e| invalid(format!("{META} does not parse: {e}")))?;
    if meta.format != FORMAT {
        return Err(invalid(format!("format {:?}", meta.format)));
    }
    if meta.version != VERSION {
        return Err(Error::invalid(format!(
            "the snapshot has format version {}; this server reads version {VERSION}",
            meta.version
        )));
    }
    if sums != sums_text(&meta_bytes, &state) {
        return Err(invalid(
            "a SHA-256 checksum in SHA256SUMS does not match its member",
        ));
    }
    let entries = decode_entries(&state).map_err(invalid)?;
    if entries.len() as u64 != meta.entries {
        return Err(invalid(format!(
            "{} entries where the header says {}",
            entries.len(),
            meta.entries
        )));
    }
    let sealed_sums: SealedSums = serde_json::from_slice(&sealed)
        .map_err(|e| invalid(format!("{SEALED_SUMS} does not parse: {e}")))?;
    Ok(Snapshot {
        meta,
        entries,
        sums,
        sealed_sums,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Meta {
        Meta {
            format: FORMAT.into(),
            version: VERSION,
            cluster_id: "c1".into(),
            seal_type: "none".into(),
            storage_type: "inmem".into(),
            created: 1_700_000_000,
            entries: 0,
        }
    }

    fn clear(sums: &[u8]) -> Result<SealedSums> {
        use base64::Engine;
        Ok(SealedSums {
            seal_type: "none".into(),
            root_key_id: String::new(),
            sealed: base64::engine::general_purpose::STANDARD.encode(sums),
        })
    }

    fn sample() -> Vec<(String, Vec<u8>)> {
        vec![
            ("a".into(), b"1".to_vec()),
            ("b/c".into(), vec![0, 255, 7]),
            ("empty".into(), Vec::new()),
        ]
    }

    #[test]
    fn round_trips() {
        let bytes = write(meta(), &sample(), clear).unwrap();
        let back = read(&bytes).unwrap();
        assert_eq!(back.entries, sample());
        assert_eq!(back.meta.entries, 3);
        assert_eq!(back.meta.cluster_id, "c1");
        assert_eq!(back.sealed_sums.seal_type, "none");
    }

    #[test]
    fn every_truncation_and_corruption_is_a_400() {
        let bytes = write(meta(), &sample(), clear).unwrap();
        for len in 0..bytes.len() {
            let err = read(&bytes[..len]).unwrap_err();
            assert_eq!(err.status(), 400, "cut at {len}: {err}");
        }
        // Flipping any byte: gzip's CRC-32, tar's checksums or SHA256SUMS catch any change.
        for at in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[at] ^= 0x55;
            if let Ok(snapshot) = read(&bad) {
                // A flip that leaves the content as it was (the gzip header's free fields,
                // bits of the deflate stream that decode the same) may pass: never a change.
                assert_eq!(
                    snapshot.entries,
                    sample(),
                    "a flip at {at} changed the content"
                );
                assert_eq!(snapshot.meta, read(&bytes).unwrap().meta);
            }
        }
    }

    #[test]
    fn a_tampered_member_fails_its_checksum() {
        let bytes = write(meta(), &sample(), clear).unwrap();
        let mut snapshot = read(&bytes).unwrap();
        snapshot.entries[0].1 = b"2".to_vec();
        // Rebuild with the old SHA256SUMS but a changed state.
        let mut m = meta();
        m.entries = 3;
        let meta_bytes = serde_json::to_vec_pretty(&m).unwrap();
        let state = encode_entries(&snapshot.entries).unwrap();
        let mut archive = tar::Builder::new(Vec::new());
        for (name, body) in [
            (META, meta_bytes),
            (STATE, state),
            (SUMS, snapshot.sums.clone()),
            (SEALED_SUMS, b"{}".to_vec()),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            archive
                .append_data(&mut header, name, body.as_slice())
                .unwrap();
        }
        let tar_bytes = archive.into_inner().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
        let err = read(&gz.finish().unwrap()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }

    /// A member that is not a plain file (a GNU sparse file expands far beyond its stored
    /// bytes, a link points elsewhere) is refused before it is read.
    #[test]
    fn a_member_that_is_not_a_regular_file_is_refused_unread() {
        for kind in [
            tar::EntryType::GNUSparse,
            tar::EntryType::Symlink,
            tar::EntryType::Directory,
        ] {
            let mut archive = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(0);
            archive.append_data(&mut header, STATE, &[][..]).unwrap();
            let tar_bytes = archive.into_inner().unwrap();
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &tar_bytes).unwrap();
            let err = read(&gz.finish().unwrap()).unwrap_err();
            assert_eq!(err.status(), 400, "{kind:?}: {err}");
            // (The tar reader may refuse a sparse header's empty map first: a 400 either way.)
            if kind != tar::EntryType::GNUSparse {
                assert!(
                    err.to_string().contains("not a regular file"),
                    "{kind:?}: {err}"
                );
            }
        }
    }
}
