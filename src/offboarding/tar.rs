//! A minimal ustar (POSIX tar) writer: regular files only, written one after another, so an
//! archive can be streamed while it is produced. Each entry is a 512-byte header, the content,
//! and zero padding to the next 512-byte block; two zero blocks end the archive. Readable by
//! every `tar` (GNU, bsdtar, Python's `tarfile`, …); no dependency needed for this much.

/// The size of a tar block.
pub const BLOCK: usize = 512;

/// Longest entry name this writer accepts (the ustar `name` field; no `prefix` split).
pub const MAX_NAME: usize = 100;

/// The header of a regular file `name` of `size` bytes, modified at `mtime` (Unix seconds).
pub fn header(name: &str, size: u64, mtime: i64) -> anyhow::Result<[u8; BLOCK]> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_NAME {
        anyhow::bail!("tar entry name `{name}` must be 1–{MAX_NAME} bytes");
    }
    let mut h = [0u8; BLOCK];
    h[..bytes.len()].copy_from_slice(bytes);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime.max(0) as u64);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..273].copy_from_slice(b"forklift");
    h[297..305].copy_from_slice(b"forklift");
    // The checksum is computed with its own field as spaces.
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// Zero bytes that pad content of `size` bytes to a whole block.
pub fn padding(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 { 0 } else { BLOCK - rest }
}

/// One whole entry (header, content, padding) as bytes.
pub fn entry(name: &str, content: &[u8], mtime: i64) -> anyhow::Result<Vec<u8>> {
    let size = content.len() as u64;
    let mut out = Vec::with_capacity(BLOCK + content.len() + BLOCK);
    out.extend_from_slice(&header(name, size, mtime)?);
    out.extend_from_slice(content);
    out.resize(out.len() + padding(size), 0);
    Ok(out)
}

/// The end of an archive: two zero blocks.
pub fn end() -> Vec<u8> {
    vec![0u8; 2 * BLOCK]
}

/// Writes `value` as zero-padded octal filling `field` but its last byte (a NUL).
fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    let text = &text.as_bytes()[text.len().saturating_sub(width)..];
    field[..width].copy_from_slice(text);
    field[width] = 0;
}

/// Reads the entries of an archive this module wrote (tests and `forklift` tooling): (name,
/// content) pairs, stopping at the end marker.
pub fn read(mut bytes: &[u8]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    while bytes.len() >= BLOCK {
        let h = &bytes[..BLOCK];
        if h.iter().all(|b| *b == 0) {
            return Ok(out);
        }
        let name_end = h[..MAX_NAME]
            .iter()
            .position(|b| *b == 0)
            .unwrap_or(MAX_NAME);
        let name = String::from_utf8(h[..name_end].to_vec())?;
        let size_text = std::str::from_utf8(&h[124..135])?;
        let size = u64::from_str_radix(size_text.trim_matches(|c: char| c == '\0' || c == ' '), 8)?;
        let start = BLOCK;
        let stop = start + size as usize;
        anyhow::ensure!(bytes.len() >= stop, "archive truncated in `{name}`");
        out.push((name, bytes[start..stop].to_vec()));
        bytes = &bytes[(stop + padding(size)).min(bytes.len())..];
    }
    anyhow::bail!("archive truncated: no end marker")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_are_block_aligned() {
        let mut archive = entry("a.txt", b"hello", 0).expect("entry");
        assert_eq!(archive.len(), 2 * BLOCK);
        archive.extend(entry("dir/empty.json", b"", 1_700_000_000).expect("entry"));
        archive.extend(end());
        let read = read(&archive).expect("read");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], ("a.txt".to_string(), b"hello".to_vec()));
        assert_eq!(read[1].0, "dir/empty.json");
        // Without the end marker the archive is truncated.
        assert!(super::read(&archive[..archive.len() - 2 * BLOCK]).is_err());
    }

    #[test]
    fn the_checksum_is_what_tar_expects() {
        let h = header("x", 3, 0).expect("header");
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).expect("utf8"), 8)
            .expect("octal");
        let mut blank = h;
        blank[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, blank.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert!(header(&"n".repeat(101), 0, 0).is_err());
    }

    /// When a system `tar` is installed, it lists what this module wrote.
    #[test]
    fn system_tar_reads_it() {
        let mut archive = entry("sheets/a.yaml", b"identity: {}\n", 0).expect("entry");
        archive.extend(end());
        let dir = std::env::temp_dir().join(format!("forklift-tar-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("t.tar");
        std::fs::write(&file, &archive).expect("write");
        let listed = std::process::Command::new("tar")
            .arg("-tf")
            .arg(&file)
            .output();
        let _ = std::fs::remove_dir_all(&dir);
        if let Ok(out) = listed {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "sheets/a.yaml");
        }
    }
}
