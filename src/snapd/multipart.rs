//! The multipart forms snapd reads: an offline remodel (`POST /v2/model`, snapd ≥ 2.61.2)
//! and a snap installed from a file (`POST /v2/snaps`). Snap files are sent apart, streamed
//! from disk: the `…_around` forms give the bytes that go around them.
//!
//! \[pure\] Parts as snapd's `remodelForm` expects them: exactly one `new-model`,
//! zero or more `assertion` parts, zero or more `snap` file parts; and as `snap install FILE`
//! sends them (`snapd:client/snap_op.go sendSnapFiles`): `action`, `snap-path`, the
//! `dangerous` flag when set, then the `snap` file part.

/// A snap file sent with an offline remodel: streamed from `path` when the form is sent, never
/// read whole into memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// File name snapd sees (`pc_146.snap`).
    pub filename: String,
    /// Where the squashfs is.
    pub path: std::path::PathBuf,
}

/// An encoded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `multipart/form-data; boundary=…`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The remodel form around snap files whose bytes are sent apart (streamed from their files):
/// `(content type, the bytes before the first file's, the bytes after each file's)`. Without
/// files the head is the whole form. `boundary` must occur in no part: a
/// [`random_boundary`], since the files cannot be searched first.
pub fn remodel_form_around(
    new_model: &str,
    assertions: &[String],
    filenames: &[&str],
    boundary: &str,
) -> (String, Vec<u8>, Vec<Vec<u8>>) {
    let assertion_type = "Content-Type: application/x.ubuntu.assertion";
    let mut head = Vec::new();
    let mut part = |headers: &str, data: &[u8]| {
        head.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        head.extend_from_slice(data);
        head.extend_from_slice(b"\r\n");
    };
    part(
        &format!("Content-Disposition: form-data; name=\"new-model\"\r\n{assertion_type}"),
        new_model.as_bytes(),
    );
    for assertion in assertions {
        part(
            &format!("Content-Disposition: form-data; name=\"assertion\"\r\n{assertion_type}"),
            assertion.as_bytes(),
        );
    }
    let snap_head = |filename: &str| {
        let name = filename.replace(['"', '\r', '\n'], "_");
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes()
    };
    let close = format!("--{boundary}--\r\n").into_bytes();
    let Some((first, rest)) = filenames.split_first() else {
        head.extend_from_slice(&close);
        return (format!("multipart/form-data; boundary={boundary}"), head, Vec::new());
    };
    head.extend_from_slice(&snap_head(first));
    let mut afters: Vec<Vec<u8>> =
        rest.iter().map(|name| [b"\r\n".as_slice(), &snap_head(name)].concat()).collect();
    afters.push([b"\r\n".as_slice(), &close].concat());
    (format!("multipart/form-data; boundary={boundary}"), head, afters)
}

/// Encodes the form of `snap install [--dangerous] FILE`: snapd names the change after
/// `snap_path` (`Install "hello" snap from file "hello_1.snap"`).
pub fn install_form(snap_path: &str, data: &[u8], dangerous: bool) -> Form {
    let boundary = pick_boundary(snap_path, data);
    let (content_type, mut body, tail) = install_form_around(snap_path, dangerous, &boundary);
    body.reserve(data.len() + tail.len());
    body.extend_from_slice(data);
    body.extend_from_slice(&tail);
    Form { content_type, body }
}

/// A boundary for a form whose file is streamed and so cannot be searched first: 128 random
/// bits, as Go's `mime/multipart` picks one (a file holds it by chance with odds of 2⁻¹²⁸ per
/// position).
pub fn random_boundary(random: u128) -> String {
    format!("pocketses-{random:032x}")
}

/// The form of [`install_form`] around a snap whose bytes are sent apart (streamed from its
/// file): `(content type, the bytes before the file's, the bytes after)`.
pub fn install_form_around(
    snap_path: &str,
    dangerous: bool,
    boundary: &str,
) -> (String, Vec<u8>, Vec<u8>) {
    let name = snap_path.replace(['"', '\r', '\n'], "_");
    let mut head = Vec::with_capacity(512);
    let mut field = |name: &str, value: &str| {
        head.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    field("action", "install");
    field("snap-path", &name);
    if dangerous {
        field("dangerous", "true");
    }
    head.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
    (format!("multipart/form-data; boundary={boundary}"), head, tail)
}

fn pick_boundary(snap_path: &str, data: &[u8]) -> String {
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    (0u32..)
        .map(|n| format!("pocketses-remodel-{n:08x}"))
        .find(|b| {
            let b = b.as_bytes();
            !contains(snap_path.as_bytes(), b) && !contains(data, b)
        })
        .unwrap_or_else(|| "pocketses-remodel".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole remodel form, with `files`' bytes between the pieces.
    fn remodel_form(model: &str, assertions: &[String], files: &[(&str, &[u8])]) -> String {
        let names: Vec<&str> = files.iter().map(|(n, _)| *n).collect();
        let (content_type, head, afters) =
            remodel_form_around(model, assertions, &names, &random_boundary(7));
        assert_eq!(content_type, format!("multipart/form-data; boundary={}", random_boundary(7)));
        assert_eq!(afters.len(), files.len());
        let mut body = head;
        for ((_, data), after) in files.iter().zip(afters) {
            body.extend_from_slice(data);
            body.extend_from_slice(&after);
        }
        String::from_utf8(body).unwrap()
    }

    #[test]
    fn form_has_all_parts_in_order() {
        let b = random_boundary(7);
        let text = remodel_form(
            "type: model\n",
            &["type: snap-declaration\n".to_string()],
            &[("pc_1.snap", b"hsqs"), ("pc-kernel_2.snap", b"HSQS")],
        );
        let want = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"new-model\"\r\n\
             Content-Type: application/x.ubuntu.assertion\r\n\r\ntype: model\n\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"assertion\"\r\n\
             Content-Type: application/x.ubuntu.assertion\r\n\r\ntype: snap-declaration\n\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"pc_1.snap\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nhsqs\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"pc-kernel_2.snap\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nHSQS\r\n--{b}--\r\n"
        );
        assert_eq!(text, want);
    }

    #[test]
    fn a_form_without_snaps_is_all_head() {
        let b = random_boundary(7);
        let text = remodel_form("type: model\n", &[], &[]);
        assert_eq!(
            text,
            format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"new-model\"\r\n\
                 Content-Type: application/x.ubuntu.assertion\r\n\r\ntype: model\n\r\n--{b}--\r\n"
            )
        );
        let odd = remodel_form("m", &[], &[("a\"b\r\n.snap", b"x")]);
        assert!(odd.contains("filename=\"a_b__.snap\""), "{odd}");
    }

    #[test]
    fn install_form_is_what_snap_install_sends() {
        let form = install_form("hello_1.snap", b"hsqs", true);
        let boundary = form.content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(form.body).unwrap();
        let want = format!(
            "--{b}\r\nContent-Disposition: form-data; name=\"action\"\r\n\r\ninstall\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"snap-path\"\r\n\r\nhello_1.snap\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"dangerous\"\r\n\r\ntrue\r\n\
             --{b}\r\nContent-Disposition: form-data; name=\"snap\"; filename=\"hello_1.snap\"\r\n\
             Content-Type: application/octet-stream\r\n\r\nhsqs\r\n--{b}--\r\n",
            b = boundary
        );
        assert_eq!(text, want);
        let signed = String::from_utf8(install_form("a.snap", b"x", false).body).unwrap();
        assert!(!signed.contains("dangerous"));
        let tricky = install_form("a.snap", b"--pocketses-remodel-00000000", false);
        assert!(tricky.content_type.ends_with("pocketses-remodel-00000001"));
    }

    #[test]
    fn the_form_around_a_streamed_snap_is_the_same_form() {
        let boundary = random_boundary(0xfeed);
        assert_eq!(boundary, "pocketses-0000000000000000000000000000feed");
        let (content_type, head, tail) = install_form_around("hello_1.snap", true, &boundary);
        assert_eq!(content_type, format!("multipart/form-data; boundary={boundary}"));
        let whole = [head, b"hsqs".to_vec(), tail].concat();
        let form = install_form("hello_1.snap", b"hsqs", true);
        let theirs = form.content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        assert_eq!(
            String::from_utf8(whole).unwrap(),
            String::from_utf8(form.body).unwrap().replace(theirs, &boundary)
        );
    }

    #[test]
    fn boundary_avoids_content() {
        let form = install_form("pocketses-remodel-00000000.snap", b"x", false);
        assert!(form.content_type.ends_with("pocketses-remodel-00000001"));
    }
}
