//! The journal on disk: zero-filled segments of length-prefixed, CRC-checked records, and
//! the `shipped` mark (see [`super`]).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aim_api::gateway::GatewayRecord;

use super::{CRC, HEADER, MAX_RECORD, Position, SEGMENT};

pub(super) fn segment_path(dir: &Path, n: u64) -> PathBuf {
    dir.join(format!("{n:016}.seg"))
}

/// The journal's segments, oldest first.
pub(super) fn segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
            found.push(n);
        }
    }
    found.sort_unstable();
    Ok(found)
}

/// Makes segment `n`: zero-filled and synced under a temporary name, then renamed and the
/// folder synced, so a segment that exists is whole.
pub(super) fn prepare(dir: &Path, n: u64) -> io::Result<File> {
    let path = segment_path(dir, n);
    let temporary = path.with_extension("new");
    let file = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)?;
    let zeros = vec![0u8; 1 << 20];
    for at in (0..SEGMENT).step_by(zeros.len()) {
        file.write_all_at(&zeros, at)?;
    }
    file.sync_all()?;
    std::fs::rename(&temporary, &path)?;
    File::open(dir)?.sync_all()?;
    Ok(file)
}

/// Up to `max` records from `at`, not past `durable`, and where the next read starts.
pub(super) fn read(
    dir: &Path,
    at: Position,
    durable: Position,
    max: usize,
) -> io::Result<(Vec<GatewayRecord>, Position)> {
    let mut records = Vec::new();
    if at >= durable {
        return Ok((records, at));
    }
    let next_segment = Position {
        segment: at.segment + 1,
        offset: 0,
    };
    let file = match File::open(segment_path(dir, at.segment)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((records, next_segment)),
        Err(e) => return Err(e),
    };
    let end = if at.segment == durable.segment {
        durable.offset
    } else {
        SEGMENT
    };
    let mut buf = vec![0u8; (end - at.offset).min(2 * MAX_RECORD as u64) as usize];
    let filled = read_full(&file, &mut buf, at.offset)?;
    buf.truncate(filled);
    let mut pos = 0;
    while records.len() < max && pos + HEADER <= buf.len() {
        let len = le_u32(&buf[pos..]) as usize;
        let crc = le_u32(&buf[pos + 4..]);
        if len == 0 {
            // The end of this segment's data (an older segment is done).
            return Ok((records, next_segment));
        }
        let Some(json) = buf.get(pos + HEADER..pos + HEADER + len) else {
            // Whole records fit in one read from their start: the rest of this one is in
            // the next read, unless it started this one.
            if pos == 0 || len > MAX_RECORD || at.offset + (pos + HEADER + len) as u64 > end {
                return Ok((records, damaged(at, pos)));
            }
            break;
        };
        if CRC.checksum(json) != crc {
            return Ok((records, damaged(at, pos)));
        }
        match serde_json::from_slice(json) {
            Ok(record) => records.push(record),
            Err(_) => return Ok((records, damaged(at, pos))),
        }
        pos += HEADER + len;
    }
    let next = Position {
        segment: at.segment,
        offset: at.offset + pos as u64,
    };
    if next.offset >= SEGMENT - HEADER as u64 {
        return Ok((records, next_segment));
    }
    Ok((records, next))
}

/// A record that does not read back: a write torn by a crash (never acknowledged, so its
/// call never went on) or a damaged disk. The rest of the segment is skipped.
fn damaged(at: Position, pos: usize) -> Position {
    tracing::warn!(
        segment = at.segment,
        offset = at.offset + pos as u64,
        "the journal's segment ends in a record that does not read back (a write torn by a crash, never acknowledged); skipping the rest of it"
    );
    Position {
        segment: at.segment + 1,
        offset: 0,
    }
}

/// The little-endian `u32` `bytes` start with (at least four).
fn le_u32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

fn read_full(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

pub(super) fn mark_path(dir: &Path) -> PathBuf {
    dir.join("shipped")
}

/// The shipped mark, if there is one that reads back.
pub(super) fn read_mark(dir: &Path) -> Option<Position> {
    let bytes = std::fs::read(mark_path(dir)).ok()?;
    if bytes.len() != 20 || CRC.checksum(&bytes[..16]).to_le_bytes() != bytes[16..20] {
        tracing::warn!(
            "the journal's shipped mark does not read back; shipping from its oldest segment (aim records what it had as replayed)"
        );
        return None;
    }
    Some(Position {
        segment: u64::from_le_bytes(bytes[..8].try_into().ok()?),
        offset: u64::from_le_bytes(bytes[8..16].try_into().ok()?),
    })
}

/// Writes the shipped mark in place (20 bytes, one sector) and syncs it.
pub(super) fn write_mark(dir: &Path, at: Position) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(20);
    bytes.extend_from_slice(&at.segment.to_le_bytes());
    bytes.extend_from_slice(&at.offset.to_le_bytes());
    bytes.extend_from_slice(&CRC.checksum(&bytes).to_le_bytes());
    let path = mark_path(dir);
    let new = !path.exists();
    let file = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    file.write_all_at(&bytes, 0)?;
    file.sync_data()?;
    if new {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}
