//! A zip archive written entry by entry (stored, no compression: XML lots are small, and a
//! stored zip is what every portal and desktop reads). Pure: bytes out; the caller streams them.
//! Dates are the documents' own, so the same lot always gives the same bytes.

use chrono::{Datelike, NaiveDate};

/// CRC-32 (IEEE), as zip stores it.
/// `crc32fast` works on many bytes at a time (SIMD where the CPU has it); the byte-at-a-time
/// table it replaces took 18 % of a CII export.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn dos_date(d: NaiveDate) -> u16 {
    let year = (d.year() - 1980).clamp(0, 127) as u16;
    (year << 9) | ((d.month() as u16) << 5) | d.day() as u16
}

/// The central directory of an archive being written.
#[derive(Debug, Clone, Default)]
pub struct Zip {
    central: Vec<u8>,
    entries: u16,
    /// Entry names so far: a name is never used twice (extraction would keep one file).
    names: std::collections::BTreeSet<String>,
}

impl Zip {
    /// Number of entries so far.
    pub fn len(&self) -> usize {
        usize::from(self.entries)
    }

    /// Whether the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The bytes of one entry (local header and data), written at `offset` in the archive. A
    /// name already in the archive gets `_2`, `_3`, ... before its extension.
    pub fn entry(&mut self, name: &str, data: &[u8], date: NaiveDate, offset: u64) -> Vec<u8> {
        let crc = crc32(data);
        let size = data.len() as u32;
        let name = self.unique(name);
        let name = name.as_bytes();
        let mut common = Vec::with_capacity(26);
        common.extend_from_slice(&20u16.to_le_bytes()); // version needed
        common.extend_from_slice(&0x0800u16.to_le_bytes()); // UTF-8 names
        common.extend_from_slice(&0u16.to_le_bytes()); // stored
        common.extend_from_slice(&0u16.to_le_bytes()); // time 00:00
        common.extend_from_slice(&dos_date(date).to_le_bytes());
        common.extend_from_slice(&crc.to_le_bytes());
        common.extend_from_slice(&size.to_le_bytes());
        common.extend_from_slice(&size.to_le_bytes());
        common.extend_from_slice(&(name.len() as u16).to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes()); // extra
        let mut local = Vec::with_capacity(30 + name.len() + data.len());
        local.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        local.extend_from_slice(&common);
        local.extend_from_slice(name);
        local.extend_from_slice(data);

        self.central
            .extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        self.central.extend_from_slice(&20u16.to_le_bytes()); // made by
        self.central.extend_from_slice(&common);
        self.central.extend_from_slice(&0u16.to_le_bytes()); // comment
        self.central.extend_from_slice(&0u16.to_le_bytes()); // disk
        self.central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
        self.central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        self.central
            .extend_from_slice(&(offset as u32).to_le_bytes());
        self.central.extend_from_slice(name);
        self.entries += 1;
        local
    }

    fn unique(&mut self, name: &str) -> String {
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => name.split_at(i),
            _ => (name, ""),
        };
        let mut candidate = name.to_owned();
        let mut n = 1u32;
        while self.names.contains(&candidate) {
            n += 1;
            candidate = format!("{stem}_{n}{ext}");
        }
        self.names.insert(candidate.clone());
        candidate
    }

    /// The central directory and its end record, written at `offset` (after the last entry).
    pub fn finish(&self, offset: u64) -> Vec<u8> {
        let mut out = self.central.clone();
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&self.entries.to_le_bytes());
        out.extend_from_slice(&(self.central.len() as u32).to_le_bytes());
        out.extend_from_slice(&(offset as u32).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out
    }
}

/// Reads a stored archive back: `(name, data)` per entry, checking every CRC. For tests and
/// for `facto exports` users who want the files one by one.
///
/// # Errors
///
/// A malformed archive, with what is wrong.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let u16_at = |i: usize| -> Result<u16, String> {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .ok_or_else(|| format!("truncated at {i}"))
    };
    let u32_at = |i: usize| -> Result<u32, String> {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| format!("truncated at {i}"))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while u32_at(i)? == 0x0403_4b50 {
        let crc = u32_at(i + 14)?;
        let size = u32_at(i + 18)? as usize;
        let name_len = usize::from(u16_at(i + 26)?);
        let extra = usize::from(u16_at(i + 28)?);
        let name_start = i + 30;
        let data_start = name_start + name_len + extra;
        let name = bytes
            .get(name_start..name_start + name_len)
            .ok_or("truncated name")?;
        let data = bytes
            .get(data_start..data_start + size)
            .ok_or("truncated data")?;
        if crc32(data) != crc {
            return Err(format!("bad CRC for entry {}", out.len() + 1));
        }
        out.push((String::from_utf8_lossy(name).into_owned(), data.to_vec()));
        i = data_start + size;
    }
    let eocd = bytes.len().checked_sub(22).ok_or("no end record")?;
    if u32_at(eocd)? != 0x0605_4b50 || usize::from(u16_at(eocd + 10)?) != out.len() {
        return Err("the end record does not match the entries".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_the_standard_check_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
        // Longer than any SIMD block, with every byte value.
        let all: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
        let bitwise = !all.iter().fold(!0u32, |mut c, &b| {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c
        });
        assert_eq!(crc32(&all), bitwise);
    }

    #[test]
    fn a_name_is_never_used_twice_in_one_archive() {
        let mut z = Zip::default();
        let d = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let mut bytes = Vec::new();
        for data in [&b"1"[..], b"2", b"3"] {
            let e = z.entry("a.xml", data, d, bytes.len() as u64);
            bytes.extend(e);
        }
        let end = z.finish(bytes.len() as u64);
        bytes.extend(end);
        let names: Vec<String> = read(&bytes).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["a.xml", "a_2.xml", "a_3.xml"]);
    }

    #[test]
    fn archive_reads_back_and_python_agrees() {
        let mut z = Zip::default();
        let d = NaiveDate::from_ymd_opt(2026, 3, 15).unwrap();
        let mut bytes = z.entry("a.xml", b"<a/>", d, 0);
        let second = z.entry("é.xml", b"<b>x</b>", d, bytes.len() as u64);
        bytes.extend(second);
        let end = z.finish(bytes.len() as u64);
        bytes.extend(end);
        let back = read(&bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[1], ("é.xml".to_owned(), b"<b>x</b>".to_vec()));
        // An independent reader, when there is one.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.zip");
        std::fs::write(&p, &bytes).unwrap();
        if let Ok(out) = std::process::Command::new("python3")
            .args(["-m", "zipfile", "-t"])
            .arg(&p)
            .output()
        {
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}
