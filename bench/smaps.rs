//! A process's memory broken down by mapping (`/proc/PID/smaps`): the binary's segments, heap,
//! malloc arenas, thread stacks, each library, vdso. `pocketses-bench smaps` and `idle` print it.
//!
//! Each mapping of the binary is labelled with the ELF sections its file range holds (read from the
//! binary's section headers, which stripping keeps), so the table says the same with lld, whose
//! read-only segment comes before the text, and with ld.bfd, whose rodata follows it; anonymous mappings
//! are thread stacks when a thread's stack pointer (`/proc/PID/task/TID/syscall`) lies in them,
//! malloc arenas when they start on a 64 MiB boundary with their reserved rest (`---p`) right
//! behind, and `.bss` when they follow the binary's data directly.

use std::fmt::Write as _;

use anyhow::Context;

/// The figures of one mapping or one row, kB.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    pub size: u64,
    pub rss: u64,
    pub pss: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
}

impl Figures {
    fn add(&mut self, o: &Figures) {
        self.size += o.size;
        self.rss += o.rss;
        self.pss += o.pss;
        self.shared_clean += o.shared_clean;
        self.shared_dirty += o.shared_dirty;
        self.private_clean += o.private_clean;
        self.private_dirty += o.private_dirty;
    }
}

/// One mapping of `/proc/PID/smaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub perms: String,
    /// Offset in the mapped file.
    pub offset: u64,
    /// Path, `[heap]`, `[stack]`, `[vdso]`…, or empty for anonymous memory.
    pub name: String,
    pub figures: Figures,
}

/// Parses the text of `/proc/PID/smaps`.
pub fn parse(text: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some(field) = first.strip_suffix(':') {
            let Some(m) = out.last_mut() else { continue };
            let v = words.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let f = &mut m.figures;
            match field {
                "Size" => f.size = v,
                "Rss" => f.rss = v,
                "Pss" => f.pss = v,
                "Shared_Clean" => f.shared_clean = v,
                "Shared_Dirty" => f.shared_dirty = v,
                "Private_Clean" => f.private_clean = v,
                "Private_Dirty" => f.private_dirty = v,
                _ => {}
            }
            continue;
        }
        // A header: start-end perms offset dev inode [name]
        let Some((s, e)) = first.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else {
            continue;
        };
        let perms = words.next().unwrap_or("").to_string();
        let offset = words.next().and_then(|o| u64::from_str_radix(o, 16).ok()).unwrap_or(0);
        let name = words.skip(2).collect::<Vec<_>>().join(" ");
        out.push(Mapping { start, end, perms, offset, name, figures: Figures::default() });
    }
    out
}

/// A thread and its stack pointer (when it is blocked in a system call).
#[derive(Debug, Clone)]
pub struct Thread {
    pub name: String,
    pub sp: Option<u64>,
}

/// Reads the threads of `pid`: name and stack pointer from `/proc/PID/task/TID/syscall`.
pub fn threads(pid: u32) -> Vec<Thread> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let p = entry.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default().trim().to_string();
        // "NR arg1 … arg6 SP PC" while in a system call, "running" or "-1 SP PC" otherwise.
        let sc = std::fs::read_to_string(p.join("syscall")).unwrap_or_default();
        let words: Vec<&str> = sc.split_whitespace().collect();
        let sp = (words.len() >= 3)
            .then(|| words[words.len() - 2])
            .and_then(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).ok());
        out.push(Thread { name, sp });
    }
    out
}

const ARENA_ALIGN: u64 = 64 << 20;

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// An allocated ELF section: name and file range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub offset: u64,
    pub size: u64,
}

fn le(b: &[u8], at: usize, n: usize) -> Option<u64> {
    let s = b.get(at..at + n)?;
    Some(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

/// The allocated sections (`SHF_ALLOC`, with bytes in the file) of a little-endian ELF64 image.
pub fn sections(elf: &[u8]) -> Vec<Section> {
    let ok = elf.get(..6) == Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]);
    let (Some(shoff), Some(shentsize), Some(shnum), Some(shstrndx)) =
        (le(elf, 0x28, 8), le(elf, 0x3a, 2), le(elf, 0x3c, 2), le(elf, 0x3e, 2))
    else {
        return Vec::new();
    };
    if !ok {
        return Vec::new();
    }
    let header = |i: u64| -> Option<(u64, u64, u64, u64, u64)> {
        let at = usize::try_from(shoff + i * shentsize).ok()?;
        // name, type, flags, offset, size
        Some((
            le(elf, at, 4)?,
            le(elf, at + 4, 4)?,
            le(elf, at + 8, 8)?,
            le(elf, at + 0x18, 8)?,
            le(elf, at + 0x20, 8)?,
        ))
    };
    let Some((_, _, _, stroff, _)) = header(shstrndx) else { return Vec::new() };
    let name = |off: u64| -> String {
        let start = usize::try_from(stroff + off).unwrap_or(usize::MAX);
        let bytes = elf.get(start..).unwrap_or_default();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(0);
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    const SHF_ALLOC: u64 = 2;
    const SHT_NOBITS: u64 = 8;
    (1..shnum)
        .filter_map(header)
        .filter(|h| h.2 & SHF_ALLOC != 0 && h.1 != SHT_NOBITS && h.4 > 0)
        .map(|h| Section { name: name(h.0), offset: h.3, size: h.4 })
        .collect()
}

/// The names of the sections whose middle byte lies in the file range of `m` (`offset` is its file
/// offset): sections that share a page at a segment boundary are named once, where most of them is.
fn sections_in(m: &Mapping, offset: u64, secs: &[Section]) -> Vec<String> {
    let end = offset + (m.end - m.start);
    let mut v: Vec<(u64, String)> = secs
        .iter()
        .filter(|s| (offset..end).contains(&(s.offset + s.size / 2)))
        .map(|s| (s.size, s.name.clone()))
        .collect();
    // The biggest first; small ones (notes, hash tables) are summarised.
    v.sort_by_key(|x| std::cmp::Reverse(x.0));
    let mut names: Vec<String> = v.iter().take(4).map(|x| x.1.clone()).collect();
    if v.len() > 4 {
        names.push(format!("+{} small", v.len() - 4));
    }
    names
}

/// Labels each mapping; mappings with the same label are summed into one row, in first-seen order.
/// `secs` are the binary's sections (`sections`), empty when unknown.
pub fn classify(
    maps: &[Mapping],
    exe: &str,
    secs: &[Section],
    threads: &[Thread],
) -> Vec<(String, usize, Figures)> {
    let mut rows: Vec<(String, usize, Figures)> = Vec::new();
    let mut last_exe_end = None;
    for (i, m) in maps.iter().enumerate() {
        let anon = m.name.is_empty() || m.name.starts_with("[anon");
        let label = if !exe.is_empty() && m.name == exe {
            last_exe_end = Some(m.end);
            let names = sections_in(m, m.offset, secs);
            let perms = &m.perms[..m.perms.len().min(3)];
            let what = if perms == "r--" && names.iter().any(|n| n == ".data.rel.ro") {
                "RELRO, read-only after start"
            } else if perms.contains('x') {
                "text"
            } else if perms.starts_with("rw") {
                "data"
            } else {
                "read-only"
            };
            if names.is_empty() {
                format!("binary: {what} ({perms})")
            } else {
                format!("binary: {what} ({perms}: {})", names.join(" "))
            }
        } else if anon && last_exe_end == Some(m.start) && m.perms.starts_with("rw") {
            "binary: .bss (anonymous, right after data)".to_string()
        } else if m.name == "[heap]" {
            "heap (brk: main malloc arena)".to_string()
        } else if m.name == "[stack]" {
            "main thread stack [stack]".to_string()
        } else if m.name.starts_with('[') && !anon {
            m.name.clone()
        } else if anon {
            let on_stack =
                threads.iter().any(|t| t.sp.is_some_and(|sp| sp >= m.start && sp < m.end));
            let next_reserved = maps.get(i + 1).is_some_and(|n| {
                n.start == m.end && n.perms.starts_with("---") && n.name.is_empty()
            });
            if on_stack {
                "thread stacks (anonymous, a thread's stack pointer inside)".to_string()
            } else if m.perms.starts_with("---") {
                "guard pages and reserved address space (---)".to_string()
            } else if m.start % ARENA_ALIGN == 0 && next_reserved {
                "malloc arenas of threads (64 MiB-aligned)".to_string()
            } else {
                "other anonymous (large allocations, runtime)".to_string()
            }
        } else {
            format!("library: {}", basename(&m.name))
        };
        if let Some(r) = rows.iter_mut().find(|r| r.0 == label) {
            r.1 += 1;
            r.2.add(&m.figures);
        } else {
            rows.push((label, 1, m.figures));
        }
    }
    rows
}

/// The table of `classify`'s rows with a total, as markdown.
pub fn table(rows: &[(String, usize, Figures)]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| mapping | n | Size | Rss | Pss | Shared_Clean | Private_Clean | Private_Dirty |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|---|");
    let mut total = Figures::default();
    let mut n_total = 0;
    for (label, n, f) in rows {
        total.add(f);
        n_total += n;
        let _ = writeln!(
            t,
            "| {label} | {n} | {} | {} | {} | {} | {} | {} |",
            f.size, f.rss, f.pss, f.shared_clean, f.private_clean, f.private_dirty
        );
    }
    let _ = writeln!(
        t,
        "| **total** | {n_total} | {} | **{}** | {} | {} | {} | {} |",
        total.size,
        total.rss,
        total.pss,
        total.shared_clean,
        total.private_clean,
        total.private_dirty
    );
    t
}

/// Reads and classifies `/proc/PID/smaps` and returns the markdown table.
///
/// # Errors
/// When `/proc/PID/smaps` cannot be read.
pub fn report(pid: u32) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/smaps");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Through /proc/PID/exe: the file the process runs, even if it was replaced or deleted since.
    let elf = std::fs::read(format!("/proc/{pid}/exe")).unwrap_or_default();
    let rows = classify(&parse(&text), &exe, &sections(&elf), &threads(pid));
    Ok(table(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
5600000000-5600001000 r--p 00000000 fe:00 1 /bin/p
Size:                  4 kB
Rss:                   4 kB
Pss:                   4 kB
Private_Clean:         4 kB
5600001000-5600003000 r-xp 00001000 fe:00 1 /bin/p
Size:                  8 kB
Rss:                   8 kB
Pss:                   2 kB
Shared_Clean:          8 kB
5600003000-5600004000 r--p 00003000 fe:00 1 /bin/p
Size:                  4 kB
Rss:                   4 kB
5600004000-5600005000 r--p 00004000 fe:00 1 /bin/p
Size:                  4 kB
Rss:                   4 kB
Private_Dirty:         4 kB
5600005000-5600006000 rw-p 00005000 fe:00 1 /bin/p
Size:                  4 kB
Rss:                   4 kB
Private_Dirty:         4 kB
5600006000-5600007000 rw-p 00000000 00:00 0
Size:                  4 kB
Rss:                   4 kB
Private_Dirty:         4 kB
5600100000-5600200000 rw-p 00000000 00:00 0                          [heap]
Size:               1024 kB
Rss:                  12 kB
7f0000000000-7f0000021000 rw-p 00000000 00:00 0
Size:                132 kB
Rss:                  20 kB
7f0000021000-7f0004000000 ---p 00000000 00:00 0
Size:              65404 kB
7f1000000000-7f1000001000 ---p 00000000 00:00 0
Size:                  4 kB
7f1000001000-7f1000201000 rw-p 00000000 00:00 0
Size:               2048 kB
Rss:                   8 kB
7f2000000000-7f2000010000 r-xp 00000000 fe:00 2 /usr/lib/x86_64-linux-gnu/libc.so.6
Size:                 64 kB
Rss:                  60 kB
Shared_Clean:         60 kB
7ffd00000000-7ffd00002000 r-xp 00000000 00:00 0                      [vdso]
Size:                  8 kB
Rss:                   4 kB
";

    #[test]
    fn parses_headers_and_fields() {
        let m = parse(SAMPLE);
        assert_eq!(m.len(), 13);
        assert_eq!(m[0].name, "/bin/p");
        assert_eq!(m[0].perms, "r--p");
        assert_eq!(m[0].start, 0x56_0000_0000);
        assert_eq!(m[1].figures.pss, 2);
        assert_eq!(m[1].figures.shared_clean, 8);
        assert_eq!(m[5].name, "");
        assert_eq!(m[6].name, "[heap]");
    }

    fn sample_sections() -> Vec<Section> {
        let sec = |name: &str, offset: u64, size: u64| Section { name: name.into(), offset, size };
        vec![
            sec(".dynsym", 0x100, 0x100),
            sec(".rodata", 0x200, 0xd80),
            // Starts on the last page of the read-only mapping, as lld lays it out.
            sec(".text", 0xf80, 0x2080),
            sec(".eh_frame", 0x3000, 0x1000),
            sec(".data.rel.ro", 0x4000, 0x800),
            sec(".got", 0x4800, 0x800),
            sec(".data", 0x5000, 0x100),
        ]
    }

    #[test]
    fn labels_segments_stacks_arenas_and_libraries() {
        let maps = parse(SAMPLE);
        let threads = [Thread { name: "worker".into(), sp: Some(0x7f10_0010_0000) }];
        let rows = classify(&maps, "/bin/p", &sample_sections(), &threads);
        let labels: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            labels,
            [
                "binary: read-only (r--: .rodata .dynsym)",
                "binary: text (r-x: .text)",
                "binary: read-only (r--: .eh_frame)",
                "binary: RELRO, read-only after start (r--: .data.rel.ro .got)",
                "binary: data (rw-: .data)",
                "binary: .bss (anonymous, right after data)",
                "heap (brk: main malloc arena)",
                "malloc arenas of threads (64 MiB-aligned)",
                "guard pages and reserved address space (---)",
                "thread stacks (anonymous, a thread's stack pointer inside)",
                "library: libc.so.6",
                "[vdso]",
            ]
        );
        // The two ---p mappings are summed into one row.
        let guard = rows.iter().find(|r| r.0.starts_with("guard")).map(|r| (r.1, r.2.size));
        assert_eq!(guard, Some((2, 65408)));
    }

    #[test]
    fn without_sections_the_binary_rows_say_only_the_permissions() {
        let rows = classify(&parse(SAMPLE), "/bin/p", &[], &[]);
        assert_eq!(rows[0].0, "binary: read-only (r--)");
        // Both read-only mappings land in one row; nothing is lost from the total.
        assert_eq!(rows[0].1, 3);
        assert_eq!(rows[1].0, "binary: text (r-x)");
    }

    #[test]
    fn reads_the_sections_of_a_real_binary() {
        let elf = std::fs::read("/proc/self/exe").unwrap();
        let secs = sections(&elf);
        let text = secs.iter().find(|s| s.name == ".text").expect("a .text section");
        assert!(text.size > 0 && text.offset + text.size <= elf.len() as u64);
        assert!(secs.iter().any(|s| s.name == ".rodata"));
        assert!(
            sections(b"not an elf file at all, but long enough for the header fields").is_empty()
        );
    }

    #[test]
    fn table_totals_rss() {
        let rows = classify(&parse(SAMPLE), "/bin/p", &[], &[]);
        let t = table(&rows);
        // 4+8+4+4+4+4 (binary) + 12 (heap) + 20 (arena) + 8 (anonymous) + 60 (libc) + 4 (vdso)
        assert!(t.contains("| **total** | 13 | "), "{t}");
        assert!(t.contains("| **132** |"), "{t}");
        assert!(t.contains("other anonymous"), "{t}");
    }
}
