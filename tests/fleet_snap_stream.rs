//! A snap goes to snapd (`POST /v2/snaps`, and with an offline remodel `POST /v2/model`)
//! streamed from its file, never read whole into memory: a 200 MB snap must not cost 200 MB of
//! the daemon's RSS.
//!
//! Proved by the code path, not by timing or by measuring memory: a fake snapd on a unix socket
//! reads the first MiB of the body, then changes the file's last bytes on disk, then reads the
//! rest. A client that had built the body in memory first sends the old bytes; one that streams
//! reads the file's end only after the change, and sends the new ones. The most a streaming
//! client can have read ahead is its chunk plus the socket's buffers (well under a MiB), so
//! the result does not depend on scheduling.

#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::net::UnixListener;
use std::sync::Arc;

use pocketses::snapd::multipart::SnapFile;
use pocketses::snapd::socket::UnixTransport;
use pocketses::snapd::Client;

const SIZE: usize = 32 << 20;
const CHANGED: usize = 64 << 10;

/// What the fake snapd received: the request head and the body's length and bytes.
struct Received {
    head: String,
    body: Vec<u8>,
}

/// Serves one request on `socket`: reads a MiB of the body, overwrites the last [`CHANGED`]
/// bytes of `file` with `X`, reads the rest, answers with an async change `7`.
fn fake_snapd(
    listener: UnixListener,
    file: std::path::PathBuf,
) -> std::thread::JoinHandle<Received> {
    std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("a content-length: the body's size is known before it is sent");
        let mut body = vec![0u8; 1 << 20];
        reader.read_exact(&mut body).unwrap();
        {
            let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
            f.seek(SeekFrom::Start((SIZE - CHANGED) as u64)).unwrap();
            f.write_all(&[b'X'; CHANGED]).unwrap();
            f.sync_all().unwrap();
        }
        let mut rest = vec![0u8; length - body.len()];
        reader.read_exact(&mut rest).unwrap();
        body.extend_from_slice(&rest);
        let reply =
            r#"{"type":"async","status-code":202,"status":"Accepted","result":null,"change":"7"}"#;
        let mut out = conn;
        write!(
            out,
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
            reply.len()
        )
        .unwrap();
        Received { head, body }
    })
}

#[tokio::test]
async fn a_snap_is_streamed_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big_1.snap");
    let mut data = vec![b'h'; SIZE];
    data[..4].copy_from_slice(b"hsqs");
    std::fs::write(&path, &data).unwrap();
    let socket = dir.path().join("snapd.socket");
    let server = fake_snapd(UnixListener::bind(&socket).unwrap(), path.clone());

    let client = Client::new(Arc::new(UnixTransport::new(&socket)));
    let file = std::fs::File::open(&path).unwrap();
    let change = client.install_snap_from("big_1.snap", file, SIZE as u64, true).await.unwrap();
    assert_eq!(change, "7");

    let got = server.join().unwrap();
    assert!(got.head.starts_with("POST /v2/snaps HTTP/1.1\r\n"), "{}", got.head);
    let content_type =
        got.head.lines().find_map(|l| l.strip_prefix("content-type: ")).unwrap().to_string();
    let boundary = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
    let want_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\ninstall\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"snap-path\"\r\n\r\nbig_1.snap\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"dangerous\"\r\n\r\ntrue\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"big_1.snap\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let want_tail = format!("\r\n--{boundary}--\r\n");
    assert_eq!(got.body.len(), want_head.len() + SIZE + want_tail.len());
    assert_eq!(&got.body[..want_head.len()], want_head.as_bytes());
    assert!(got.body.ends_with(want_tail.as_bytes()));
    let snap = &got.body[want_head.len()..want_head.len() + SIZE];
    assert_eq!(&snap[..SIZE - CHANGED], &data[..SIZE - CHANGED], "the file's bytes, in order");
    // The file's end was read after the server had taken its first MiB: streamed.
    assert!(
        snap[SIZE - CHANGED..].iter().all(|b| *b == b'X'),
        "the end of the snap was read before it was sent: the body was buffered whole"
    );
}

#[tokio::test]
async fn an_offline_remodels_snaps_are_streamed_from_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("pc_147.snap");
    std::fs::write(&small, b"hsqs small gadget").unwrap();
    let big = dir.path().join("pc-kernel_2.snap");
    let mut data = vec![b'k'; SIZE];
    data[..4].copy_from_slice(b"hsqs");
    std::fs::write(&big, &data).unwrap();
    let socket = dir.path().join("snapd.socket");
    let server = fake_snapd(UnixListener::bind(&socket).unwrap(), big.clone());

    let client = Client::new(Arc::new(UnixTransport::new(&socket)));
    let snaps = [
        SnapFile { filename: "pc_147.snap".into(), path: small },
        SnapFile { filename: "pc-kernel_2.snap".into(), path: big },
    ];
    let model = "type: model\n".to_string();
    let assertions = ["type: account\n".to_string()];
    let change = client.post_model_multipart(&model, &assertions, &snaps).await.unwrap();
    assert_eq!(change, "7");

    let got = server.join().unwrap();
    assert!(got.head.starts_with("POST /v2/model HTTP/1.1\r\n"), "{}", got.head);
    let content_type =
        got.head.lines().find_map(|l| l.strip_prefix("content-type: ")).unwrap().to_string();
    let b = content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
    let part =
        |headers: &str| format!("--{b}\r\nContent-Disposition: form-data; {headers}\r\n\r\n");
    let assertion = "Content-Type: application/x.ubuntu.assertion";
    let snap = "Content-Type: application/octet-stream";
    let want_head = [
        part(&format!("name=\"new-model\"\r\n{assertion}")),
        "type: model\n\r\n".into(),
        part(&format!("name=\"assertion\"\r\n{assertion}")),
        "type: account\n\r\n".into(),
        part(&format!("name=\"snap\"; filename=\"pc_147.snap\"\r\n{snap}")),
        "hsqs small gadget\r\n".into(),
        part(&format!("name=\"snap\"; filename=\"pc-kernel_2.snap\"\r\n{snap}")),
    ]
    .concat();
    let want_tail = format!("\r\n--{b}--\r\n");
    assert_eq!(got.body.len(), want_head.len() + SIZE + want_tail.len());
    assert_eq!(String::from_utf8_lossy(&got.body[..want_head.len()]), want_head);
    assert!(got.body.ends_with(want_tail.as_bytes()));
    let kernel = &got.body[want_head.len()..want_head.len() + SIZE];
    assert_eq!(&kernel[..SIZE - CHANGED], &data[..SIZE - CHANGED], "the file's bytes, in order");
    assert!(
        kernel[SIZE - CHANGED..].iter().all(|b| *b == b'X'),
        "the end of the kernel was read before it was sent: the form was buffered whole"
    );
}

#[tokio::test]
async fn a_file_shorter_than_said_fails_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.snap");
    std::fs::write(&path, b"hsqs").unwrap();
    let socket = dir.path().join("snapd.socket");
    let listener = UnixListener::bind(&socket).unwrap();
    // Reads until the client gives up, answers nothing.
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut sink = Vec::new();
            let _ = conn.read_to_end(&mut sink);
        }
    });
    let client = Client::new(Arc::new(UnixTransport::new(&socket)));
    let file = std::fs::File::open(&path).unwrap();
    let err = client.install_snap_from("short.snap", file, 1000, false).await.unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("cannot talk to snapd: "), "{text}");
    assert!(text.contains("the file ended 996 bytes early"), "{text}");
}
