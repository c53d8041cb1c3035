use super::*;
use std::time::{Duration, UNIX_EPOCH};

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

fn seqs(spool: &Spool) -> Vec<u64> {
    spool.peek(usize::MAX).unwrap().iter().map(|e| e.seq).collect()
}

fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut p = format!("record {i} ").into_bytes();
    p.resize(len, b'.');
    p
}

fn small() -> Limits {
    Limits { max_bytes: 1 << 20, max_age: None, segment_bytes: 4096 }
}

fn segment_files(dir: &Path) -> Vec<u64> {
    segment_ids(dir).unwrap()
}

#[test]
fn appends_then_peeks_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(spool.append_batch(&[b"a".as_slice(), b"b"], at(0)).unwrap(), Some((1, 2)));
    assert_eq!(spool.append_batch(&[b"c"], at(1)).unwrap(), Some((3, 3)));
    let got = spool.peek(10).unwrap();
    let want = vec![
        Entry { seq: 1, time_ms: millis(at(0)), payload: b"a".to_vec() },
        Entry { seq: 2, time_ms: millis(at(0)), payload: b"b".to_vec() },
        Entry { seq: 3, time_ms: millis(at(1)), payload: b"c".to_vec() },
    ];
    assert_eq!(got, want);
    assert_eq!(spool.peek(2).unwrap().len(), 2);
    let stats = spool.stats();
    assert_eq!((stats.appended_records, stats.pending_records), (3, 3));
    assert_eq!(stats.pending_bytes, 3 * 27);
    assert_eq!(stats.oldest_pending_ms, Some(millis(at(0))));
    assert_eq!(stats.bytes_written, 3 * 27);
}

#[test]
fn an_empty_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    let none: [&[u8]; 0] = [];
    assert_eq!(spool.append_batch(&none, at(0)).unwrap(), None);
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn a_too_large_payload_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    let big = vec![0u8; record::MAX_PAYLOAD + 1];
    let err = spool.append_batch(&[b"ok".to_vec(), big], at(0)).unwrap_err();
    assert!(err.to_string().starts_with("cannot append to spool: record too large"), "{err}");
    assert_eq!(spool.stats().pending_records, 0);
    assert_eq!(spool.append_batch(&[b"x"], at(0)).unwrap(), Some((1, 1)));
}

#[test]
fn ack_removes_records_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"a".as_slice(), b"b", b"c"], at(0)).unwrap();
    spool.ack(2).unwrap();
    assert_eq!(seqs(&spool), [3]);
    assert_eq!(spool.stats().acked_records, 2);
    assert_eq!(spool.stats().pending_records, 1);
    assert_eq!(
        fs::read_to_string(dir.path().join("ack")).unwrap(),
        "acked 2\ndropped-records 0\ndropped-bytes 0\n"
    );
    drop(spool);
    let spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(seqs(&spool), [3]);
    assert_eq!(spool.stats().next_seq, 4);
}

#[test]
fn acking_old_or_future_positions_is_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"a".as_slice(), b"b"], at(0)).unwrap();
    spool.ack(1).unwrap();
    spool.ack(0).unwrap();
    assert_eq!(seqs(&spool), [2]);
    spool.ack(1000).unwrap();
    assert_eq!(seqs(&spool), Vec::<u64>::new());
    assert_eq!(spool.stats().acked_seq, 2);
    // The next record still gets a fresh number.
    assert_eq!(spool.append_batch(&[b"c"], at(1)).unwrap(), Some((3, 3)));
}

#[test]
fn segments_roll_and_acked_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    for i in 1..=40 {
        spool.append_batch(&[payload(i, 500)], at(i)).unwrap();
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 5, "{files:?}");
    for id in &files {
        let len = fs::metadata(dir.path().join(segment_name(*id))).unwrap().len();
        assert!(len <= 4096, "segment {id} is {len} bytes");
    }
    spool.ack(20).unwrap();
    let left = segment_files(dir.path());
    assert!(left.len() < files.len());
    assert_eq!(seqs(&spool), (21..=40).collect::<Vec<_>>());
    spool.ack(40).unwrap();
    // Every segment but the last is deleted; the last one stays for the next appends.
    let last = *files.last().unwrap();
    assert_eq!(segment_files(dir.path()), [last]);
    assert_eq!(spool.stats().pending_records, 0);
    assert_eq!(spool.stats().pending_bytes, 0);
    assert_eq!(spool.stats().oldest_pending_ms, None);
    spool.append_batch(&[b"after"], at(50)).unwrap();
    assert_eq!(segment_files(dir.path()), [last], "appended to the same segment");
    assert_eq!(seqs(&spool), [41]);
    assert_eq!(spool.stats().oldest_pending_ms, Some(millis(at(50))));
    assert_eq!(spool.stats().pending_bytes, record::HEADER_LEN as u64 + 5);
    // Read from disk, the same.
    drop(spool);
    let spool = Spool::open(dir.path(), small()).unwrap();
    assert_eq!(seqs(&spool), [41]);
    // A spool opened with everything acknowledged deletes its segments.
    let mut spool = spool;
    spool.ack(41).unwrap();
    drop(spool);
    let _spool = Spool::open(dir.path(), small()).unwrap();
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn sequence_numbers_resume_after_everything_was_acked() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"a".as_slice(), b"b"], at(0)).unwrap();
    spool.ack(2).unwrap();
    drop(spool);
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(spool.append_batch(&[b"c"], at(1)).unwrap(), Some((3, 3)));
}

#[test]
fn a_second_open_is_refused_while_the_first_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Limits::default()).unwrap();
    let err = Spool::open(dir.path(), Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot open spool {}: in use by another process", dir.path().display())
    );
    drop(spool);
    Spool::open(dir.path(), Limits::default()).unwrap();
}

/// A child forked by another thread of this process (a test starting a daemon, say) holds copies
/// of every descriptor until it execs, the spool's lock among them: a lock that belongs to the
/// descriptor (`flock`) would stay held by that child after the spool is closed, and the next
/// open would be refused. The lock belongs to the process, so it is not inherited.
#[test]
fn a_forked_child_does_not_keep_the_lock_of_a_closed_spool() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Limits::default()).unwrap();
    // SAFETY: the child calls only async-signal-safe functions (sleep, _exit).
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        // SAFETY: as above.
        unsafe {
            libc::sleep(5);
            libc::_exit(0);
        }
    }
    drop(spool);
    let reopened = Spool::open(dir.path(), Limits::default());
    // SAFETY: our own child.
    unsafe {
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    reopened.unwrap();
}

/// Another process cannot take the lock of an open spool.
#[test]
#[allow(clippy::cast_possible_truncation)] // F_WRLCK and SEEK_SET are small constants
fn another_process_cannot_take_the_lock_of_an_open_spool() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), Limits::default()).unwrap();
    let path =
        std::ffi::CString::new(dir.path().join(LOCK_FILE).into_os_string().into_encoded_bytes())
            .unwrap();
    // SAFETY: the child calls only async-signal-safe functions (open, fcntl, _exit) on memory
    // prepared before the fork.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDWR);
            let mut lock: libc::flock = std::mem::zeroed();
            lock.l_type = libc::F_WRLCK as libc::c_short;
            lock.l_whence = libc::SEEK_SET as libc::c_short;
            let got = fd >= 0 && libc::fcntl(fd, libc::F_SETLK, &lock) == 0;
            libc::_exit(if got { 0 } else { 7 });
        }
    }
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(child, &mut status, 0) };
    assert!(libc::WIFEXITED(status));
    assert_eq!(libc::WEXITSTATUS(status), 7, "the other process took the lock");
    drop(spool);
}

#[test]
fn a_torn_tail_is_truncated_and_appends_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"one".as_slice(), b"two"], at(0)).unwrap();
    drop(spool);
    let path = dir.path().join(segment_name(1));
    let mut half = record::encode(3, 5, b"three").unwrap();
    half.truncate(10);
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&half).unwrap();
    drop(file);
    assert_eq!(inspect(dir.path()).unwrap().torn_truncations, 1);
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(spool.stats().torn_truncations, 1);
    assert_eq!(spool.stats().corrupt_skipped, 0);
    assert_eq!(fs::metadata(&path).unwrap().len(), 2 * 26 + 6);
    assert_eq!(spool.append_batch(&[b"three"], at(1)).unwrap(), Some((3, 3)));
    assert_eq!(seqs(&spool), [1, 2, 3]);
}

#[test]
fn zeros_at_the_end_are_truncated() {
    // What ext4 can show after a crash: the size grew but the data never landed.
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"one"], at(0)).unwrap();
    drop(spool);
    let path = dir.path().join(segment_name(1));
    let mut file = OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(&[0; 4096]).unwrap();
    drop(file);
    let spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 29);
    assert_eq!(seqs(&spool), [1]);
}

#[test]
fn a_damaged_middle_record_is_skipped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[payload(1, 100), payload(2, 100), payload(3, 100)], at(0)).unwrap();
    drop(spool);
    let path = dir.path().join(segment_name(1));
    let mut bytes = fs::read(&path).unwrap();
    bytes[126 + 40] ^= 0x55;
    fs::write(&path, &bytes).unwrap();
    assert_eq!(inspect(dir.path()).unwrap().corrupt_skipped, 1);
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(spool.stats().corrupt_skipped, 1);
    assert_eq!(seqs(&spool), [1, 3]);
    assert_eq!(spool.append_batch(&[b"four"], at(1)).unwrap(), Some((4, 4)));
    spool.ack(4).unwrap();
    assert_eq!(spool.stats().pending_records, 0);
    drop(spool);
    let _spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert!(segment_files(dir.path()).is_empty());
}

#[test]
fn damage_in_every_byte_never_panics_and_never_loses_other_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    for i in 1..=6 {
        spool.append_batch(&[payload(i, 60)], at(i)).unwrap();
    }
    drop(spool);
    let path = dir.path().join(segment_name(1));
    let clean = fs::read(&path).unwrap();
    for offset in 0..clean.len() {
        let mut bytes = clean.clone();
        bytes[offset] ^= 0xa5;
        fs::write(&path, &bytes).unwrap();
        let spool = Spool::open(dir.path(), small()).unwrap();
        let got = seqs(&spool);
        let hit = offset as u64 / 86 + 1;
        let want: Vec<u64> = (1..=6).filter(|s| *s != hit).collect();
        assert_eq!(got, want, "byte {offset}");
        drop(spool);
        fs::write(&path, &clean).unwrap();
    }
}

#[test]
fn a_damaged_ack_file_means_resending_not_losing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"a".as_slice(), b"b"], at(0)).unwrap();
    spool.ack(1).unwrap();
    drop(spool);
    fs::write(dir.path().join("ack"), b"\xff\xfegarbage").unwrap();
    fs::write(dir.path().join("ack.tmp"), b"half written").unwrap();
    let spool = Spool::open(dir.path(), Limits::default()).unwrap();
    assert_eq!(seqs(&spool), [1, 2]);
    assert!(!dir.path().join("ack.tmp").exists());
}

#[test]
fn ack_state_parses_what_it_renders_and_ignores_the_rest() {
    let state = AckState { acked: 7, dropped_records: 3, dropped_bytes: 99 };
    assert_eq!(AckState::parse(&state.render()), state);
    assert_eq!(
        AckState::parse("acked x\nwho knows\nacked 5\n"),
        AckState { acked: 5, ..AckState::default() }
    );
    assert_eq!(AckState::parse(""), AckState::default());
}

#[test]
fn past_max_bytes_the_oldest_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_bytes: 16 * 1024, max_age: None, segment_bytes: 4096 };
    let mut spool = Spool::open(dir.path(), limits).unwrap();
    for i in 1..=200 {
        spool.append_batch(&[payload(i, 200)], at(i)).unwrap();
    }
    let stats = spool.stats();
    let on_disk: u64 = segment_files(dir.path())
        .iter()
        .map(|id| fs::metadata(dir.path().join(segment_name(*id))).unwrap().len())
        .sum();
    assert!(on_disk <= 16 * 1024, "{on_disk}");
    assert!(stats.dropped_records > 0);
    assert_eq!(stats.dropped_records + stats.pending_records, 200);
    assert_eq!(stats.dropped_bytes, stats.dropped_records * 226);
    let kept = seqs(&spool);
    assert_eq!(kept.last(), Some(&200), "the newest is kept");
    assert_eq!(kept, (kept[0]..=200).collect::<Vec<_>>(), "what is kept has no holes");
    assert_eq!(kept[0], stats.dropped_records + 1, "what is dropped is the oldest");
    drop(spool);
    let spool = Spool::open(dir.path(), limits).unwrap();
    assert_eq!(spool.stats().dropped_records, stats.dropped_records, "drop counts survive reopen");
    assert_eq!(seqs(&spool), kept);
}

#[test]
fn one_batch_larger_than_max_bytes_is_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_bytes: 8 * 1024, max_age: None, segment_bytes: 4096 };
    let mut spool = Spool::open(dir.path(), limits).unwrap();
    spool.append_batch(&[payload(1, 100)], at(0)).unwrap();
    let batch: Vec<Vec<u8>> = (2..=60).map(|i| payload(i, 200)).collect();
    spool.append_batch(&batch, at(1)).unwrap();
    assert_eq!(seqs(&spool), (2..=60).collect::<Vec<_>>());
    assert_eq!(spool.stats().dropped_records, 1);
}

#[test]
fn past_max_age_the_oldest_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_age: Some(Duration::from_secs(100)), ..small() };
    let mut spool = Spool::open(dir.path(), limits).unwrap();
    for i in 0..50 {
        spool.append_batch(&[payload(i, 300)], at(i * 10)).unwrap();
    }
    // At t=490 records stamped before t=390 are older than 100 s.
    let kept = seqs(&spool);
    assert_eq!(kept, (40..=50).collect::<Vec<_>>());
    assert_eq!(spool.stats().dropped_records, 39);
    assert_eq!(spool.stats().oldest_pending_ms, Some(millis(at(390))));
    spool.enforce(at(10_000)).unwrap();
    assert_eq!(seqs(&spool), Vec::<u64>::new());
    assert_eq!(spool.stats().dropped_records, 50);
    drop(spool);
    let spool = Spool::open(dir.path(), limits).unwrap();
    assert_eq!(seqs(&spool), Vec::<u64>::new(), "dropped records do not come back");
    assert_eq!(spool.stats().next_seq, 51);
}

#[test]
fn inspect_reads_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    spool.append_batch(&[b"a".as_slice(), b"b", b"c"], at(0)).unwrap();
    spool.ack(1).unwrap();
    let path = dir.path().join(segment_name(1));
    let before = fs::read(&path).unwrap();
    let mut torn = before.clone();
    torn.extend_from_slice(&[0xF5, 0x01, 9]);
    fs::write(&path, &torn).unwrap();
    let stats = inspect(dir.path()).unwrap();
    assert_eq!((stats.pending_records, stats.pending_bytes), (2, 2 * 27 + 3));
    assert_eq!(stats.oldest_pending_ms, Some(millis(at(0))));
    assert_eq!(stats.torn_truncations, 1);
    assert_eq!(stats.acked_seq, 1);
    assert_eq!(fs::read(&path).unwrap(), torn, "inspect never repairs");
}

#[test]
fn inspect_of_an_empty_directory() {
    let dir = tempfile::tempdir().unwrap();
    let stats = inspect(dir.path()).unwrap();
    assert_eq!((stats.pending_records, stats.next_seq, stats.oldest_pending_ms), (0, 1, None));
}

#[test]
fn pending_weight_counts_only_what_waits() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), Limits::default()).unwrap();
    let now = std::time::SystemTime::now();
    spool.append_batch(&[b"aa".as_slice(), b"bbb", b"c"], now).unwrap();
    let weigh = |p: &[u8]| p.len() as u64;
    assert_eq!(super::pending_weight(dir.path(), weigh).unwrap(), 6);
    let first = spool.peek(1).unwrap()[0].seq;
    spool.ack(first).unwrap();
    assert_eq!(super::pending_weight(dir.path(), weigh).unwrap(), 4);
    assert_eq!(super::pending_weight(&dir.path().join("none"), weigh).ok(), None);
}

/// What `peek` returns from memory is what the disk holds, through appends, acknowledgements,
/// drops and a tail that outgrows its budget.
#[test]
fn the_tail_in_memory_is_what_the_disk_holds() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_bytes: 64 << 10,
        max_age: Some(Duration::from_secs(30)),
        segment_bytes: 16 << 10,
    };
    let mut spool = Spool::open(dir.path(), limits).unwrap();
    let mut from_memory = 0;
    for i in 1..=400u64 {
        // Sizes from 10 bytes to 9 KiB; batches of one to three.
        let len = 10 + usize::try_from(i * 7919 % 9000).unwrap();
        let batch: Vec<Vec<u8>> = (0..1 + i % 3).map(|j| payload(i * 10 + j, len)).collect();
        spool.append_batch(&batch, at(i)).unwrap();
        if spool.tail.len() as u64 == spool.stats().pending_records {
            from_memory += 1;
        }
        assert_eq!(spool.peek(usize::MAX).unwrap(), spool.peek_disk(usize::MAX).unwrap(), "{i}");
        assert_eq!(spool.peek(2).unwrap(), spool.peek_disk(2).unwrap(), "{i}");
        // Acknowledge some of it now and then: all, a part, nothing.
        let pending = spool.peek(usize::MAX).unwrap();
        if i % 50 == 0 || i > 300 {
            spool.ack(pending.last().map_or(0, |e| e.seq)).unwrap();
        } else if i % 5 == 1 {
            spool.ack(pending.first().map_or(0, |e| e.seq)).unwrap();
        }
        assert_eq!(spool.peek(usize::MAX).unwrap(), spool.peek_disk(usize::MAX).unwrap(), "{i}");
        assert!(spool.tail_bytes <= TAIL_BYTES);
    }
    assert!(from_memory > 100, "the tail served {from_memory} peeks");
    assert!(spool.stats().dropped_records > 0, "the limits dropped some");
}

/// A weigher's figure follows appends, acknowledgements, drops and reopening.
#[test]
fn pending_weight_follows_the_records() {
    let dir = tempfile::tempdir().unwrap();
    // A record weighs its length.
    let weigh = || Weigher::new(|p: &[u8]| p.len() as u64);
    let mut spool = Spool::open_weighed(dir.path(), small(), weigh()).unwrap();
    for i in 1..=40 {
        spool.append_batch(&[payload(i, 100 + usize::try_from(i).unwrap())], at(i)).unwrap();
    }
    let want = |from: u64| (from..=40).map(|i| 100 + i).sum::<u64>();
    assert_eq!(spool.stats().pending_weight, want(1));
    spool.ack(7).unwrap();
    assert_eq!(spool.stats().pending_weight, want(8));
    drop(spool);
    let mut spool = Spool::open_weighed(dir.path(), small(), weigh()).unwrap();
    assert_eq!(spool.stats().pending_weight, want(8));
    spool.ack(40).unwrap();
    assert_eq!(spool.stats().pending_weight, 0);
    spool.append_batch(&[b"abc"], at(41)).unwrap();
    assert_eq!(spool.stats().pending_weight, 3);
    // Past max-bytes the oldest go, and their weight with them.
    let mut spool = {
        drop(spool);
        Spool::open_weighed(dir.path(), Limits { max_bytes: 16384, ..small() }, weigh()).unwrap()
    };
    for i in 42..=100 {
        spool.append_batch(&[payload(i, 500)], at(i)).unwrap();
    }
    let pending = spool.peek(usize::MAX).unwrap();
    assert!(spool.stats().dropped_records > 0);
    let weight: u64 = pending.iter().map(|e| e.payload.len() as u64).sum();
    assert_eq!(spool.stats().pending_weight, weight);
    // Without a weigher, nothing weighs anything.
    drop(spool);
    assert_eq!(Spool::open(dir.path(), small()).unwrap().stats().pending_weight, 0);
}

/// `peek_held` says `true` only for records this process appended and held in memory since:
/// after a reopen, and while older records are only on disk, the records come from the files.
#[test]
fn peek_held_is_true_only_for_records_appended_here() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    spool.append_batch(&[b"a", b"b"], at(0)).unwrap();
    let (entries, held) = spool.peek_held(10).unwrap();
    assert!(held);
    assert_eq!(entries, spool.peek_disk(10).unwrap());
    drop(spool);
    let mut spool = Spool::open(dir.path(), small()).unwrap();
    let (entries, held) = spool.peek_held(10).unwrap();
    assert!(!held, "read back from disk after a reopen");
    assert_eq!(entries.len(), 2);
    // A new record joins records only on disk: the whole peek still comes from the files.
    spool.append_batch(&[b"c"], at(1)).unwrap();
    let (entries, held) = spool.peek_held(10).unwrap();
    assert!(!held);
    assert_eq!(entries.len(), 3);
    // Once the old ones are acknowledged, what is appended next is held again.
    spool.ack(entries[2].seq).unwrap();
    spool.append_batch(&[b"d"], at(2)).unwrap();
    let (entries, held) = spool.peek_held(10).unwrap();
    assert!(held);
    assert_eq!(entries.iter().map(|e| e.payload.as_slice()).collect::<Vec<_>>(), [b"d"]);
}

/// The files of a spool as a crash would leave them (the page cache's view), in a new directory.
fn crash_image(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Deferred acknowledgements move the position in memory at once and on disk every
/// `ACK_WRITE_EVERY` calls; a crash in between resends, never loses; dropping writes the rest.
#[test]
fn deferred_acks_resend_after_a_crash_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = Spool::open(&dir.path().join("s"), small()).unwrap();
    let n = u64::from(ACK_WRITE_EVERY) + 3;
    for i in 1..=n {
        spool.append_batch(&[payload(i, 50)], at(i)).unwrap();
    }
    let on_disk = |spool: &Spool, name: &str| {
        let image = dir.path().join(name);
        crash_image(spool.dir(), &image);
        let reopened = Spool::open(&image, small()).unwrap();
        let seqs: Vec<u64> = reopened.peek(usize::MAX).unwrap().iter().map(|e| e.seq).collect();
        (reopened.stats().acked_seq, seqs)
    };
    // The first few: in memory only, the file still says nothing was acknowledged.
    for seq in 1..u64::from(ACK_WRITE_EVERY) {
        spool.ack_deferred(seq).unwrap();
        assert_eq!(spool.peek(1).unwrap()[0].seq, seq + 1);
        assert_eq!(spool.stats().acked_seq, seq);
    }
    let (acked, seqs) = on_disk(&spool, "crash-1");
    assert_eq!(acked, 0);
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "everything is sent again, in order");
    // The tenth writes the file.
    spool.ack_deferred(u64::from(ACK_WRITE_EVERY)).unwrap();
    let (acked, seqs) = on_disk(&spool, "crash-2");
    assert_eq!(acked, u64::from(ACK_WRITE_EVERY));
    assert_eq!(seqs, (u64::from(ACK_WRITE_EVERY) + 1..=n).collect::<Vec<_>>());
    // A flush (the sender's, when a request fails) writes what waits, and only then.
    spool.ack_deferred(u64::from(ACK_WRITE_EVERY) + 1).unwrap();
    assert_eq!(on_disk(&spool, "crash-3").0, u64::from(ACK_WRITE_EVERY));
    let written = spool.stats().bytes_written;
    spool.flush_ack().unwrap();
    assert_eq!(on_disk(&spool, "crash-4").0, u64::from(ACK_WRITE_EVERY) + 1);
    let once = spool.stats().bytes_written;
    assert!(once > written);
    spool.flush_ack().unwrap();
    assert_eq!(spool.stats().bytes_written, once, "nothing waited: nothing written");
    // One more, then a clean close: the file has it.
    spool.ack_deferred(n - 1).unwrap();
    let path = spool.dir().to_path_buf();
    drop(spool);
    let spool = Spool::open(&path, small()).unwrap();
    assert_eq!(spool.stats().acked_seq, n - 1);
    assert_eq!(spool.peek(usize::MAX).unwrap().iter().map(|e| e.seq).collect::<Vec<_>>(), [n]);
}

/// A drop or a deleted segment is written at once, with the position that explains it, even
/// between deferred acknowledgements.
#[test]
fn deferred_acks_never_hide_a_drop_or_a_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits { max_bytes: 16384, max_age: None, segment_bytes: 4096 };
    let mut spool = Spool::open(&dir.path().join("s"), limits).unwrap();
    spool.append_batch(&[payload(1, 3000)], at(1)).unwrap();
    spool.append_batch(&[payload(2, 3000)], at(2)).unwrap();
    // Record 1 fills the first segment: acknowledging it deletes the segment, and writes the file.
    spool.ack_deferred(1).unwrap();
    assert_eq!(read_ack(spool.dir()).unwrap().acked, 1);
    // Record 2, the whole last segment: kept for the next appends, nothing deleted, deferred.
    spool.ack_deferred(2).unwrap();
    assert_eq!(read_ack(spool.dir()).unwrap().acked, 1);
    for i in 3..=20 {
        spool.append_batch(&[payload(i, 3000)], at(i)).unwrap();
    }
    let ack = read_ack(spool.dir()).unwrap();
    assert!(ack.dropped_records > 0, "past max-bytes the oldest went");
    assert_eq!(ack.dropped_records, spool.stats().dropped_records);
    assert_eq!(ack.acked, spool.stats().acked_seq, "written with the position");
}
