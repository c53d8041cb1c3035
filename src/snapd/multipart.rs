//! The multipart forms snapd reads: an offline remodel (`POST /v2/model`, snapd ≥ 2.61.2)
//! and a snap installed from a file (`POST /v2/snaps`).
//!
//! \[pure\] Parts as snapd's `remodelForm` expects them: exactly one `new-model`,
//! zero or more `assertion` parts, zero or more `snap` file parts; and as `snap install FILE`
//! sends them (`snapd:client/snap_op.go sendSnapFiles`): `action`, `snap-path`, the
//! `dangerous` flag when set, then the `snap` file part.

/// A snap file sent with an offline remodel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapFile {
    /// File name snapd sees (`pc_146.snap`).
    pub filename: String,
    /// The squashfs bytes.
    pub data: Vec<u8>,
}

/// An encoded form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    /// `multipart/form-data; boundary=…`.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Encodes the remodel form; the boundary is chosen so that it occurs in no part.
pub fn remodel_form(new_model: &str, assertions: &[String], snaps: &[SnapFile]) -> Form {
    let boundary = pick_boundary(new_model, assertions, snaps, &[]);
    let mut body = Vec::new();
    let mut part = |headers: &str, data: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"new-model\"\r\nContent-Type: application/x.ubuntu.assertion",
        new_model.as_bytes(),
    );
    for assertion in assertions {
        part(
            "Content-Disposition: form-data; name=\"assertion\"\r\nContent-Type: application/x.ubuntu.assertion",
            assertion.as_bytes(),
        );
    }
    for snap in snaps {
        let name = snap.filename.replace(['"', '\r', '\n'], "_");
        part(
            &format!(
                "Content-Disposition: form-data; name=\"snap\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream"
            ),
            &snap.data,
        );
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Form { content_type: format!("multipart/form-data; boundary={boundary}"), body }
}

/// Encodes the form of `snap install [--dangerous] FILE`: snapd names the change after
/// `snap_path` (`Install "hello" snap from file "hello_1.snap"`).
pub fn install_form(snap_path: &str, data: &[u8], dangerous: bool) -> Form {
    let boundary = pick_boundary(snap_path, &[], &[], &[data]);
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

fn pick_boundary(
    new_model: &str,
    assertions: &[String],
    snaps: &[SnapFile],
    data: &[&[u8]],
) -> String {
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    (0u32..)
        .map(|n| format!("pocketses-remodel-{n:08x}"))
        .find(|b| {
            let b = b.as_bytes();
            !contains(new_model.as_bytes(), b)
                && !assertions.iter().any(|a| contains(a.as_bytes(), b))
                && !snaps.iter().any(|s| contains(&s.data, b))
                && !data.iter().any(|d| contains(d, b))
        })
        .unwrap_or_else(|| "pocketses-remodel".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_has_all_parts_in_order() {
        let form = remodel_form(
            "type: model\n",
            &["type: snap-declaration\n".to_string()],
            &[SnapFile { filename: "pc_1.snap".into(), data: b"hsqs".to_vec() }],
        );
        let boundary = form.content_type.strip_prefix("multipart/form-data; boundary=").unwrap();
        let text = String::from_utf8(form.body).unwrap();
        let model = text.find("name=\"new-model\"").unwrap();
        let assertion = text.find("name=\"assertion\"").unwrap();
        let snap = text.find("name=\"snap\"; filename=\"pc_1.snap\"").unwrap();
        assert!(model < assertion && assertion < snap);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
        assert_eq!(text.matches(&format!("--{boundary}\r\n")).count(), 3);
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
        let model = "pocketses-remodel-00000000".to_string();
        let form = remodel_form(&model, &[], &[]);
        assert!(form.content_type.ends_with("pocketses-remodel-00000001"));
    }
}
