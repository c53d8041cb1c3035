use super::*;
use proptest::prelude::*;

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn entry(name: &str, kind: Kind, data: &[u8]) -> FileEntry {
    let (sha256, _, size) = digest(&mut &data[..]).unwrap();
    FileEntry { filename: name.into(), kind, size, sha256 }
}

fn files() -> Vec<(FileEntry, Vec<u8>)> {
    let snap = b"hsqs fake snap".to_vec();
    let assertion = b"type: snap-declaration\nauthority-id: canonical\n".to_vec();
    let model = b"type: model\nbrand-id: brand\n".to_vec();
    vec![
        (entry("hello_1.assert", Kind::Assertion, &assertion), assertion),
        (entry("hello_1.snap", Kind::Snap, &snap), snap),
        (entry("new.model", Kind::Model, &model), model),
    ]
}

fn description(files: &[(FileEntry, Vec<u8>)]) -> Description {
    Description {
        version: "1.2.3".into(),
        hardware: vec!["pocketses-pc".into()],
        files: files.iter().map(|(e, _)| e.clone()).collect(),
    }
}

/// A bundle with `files` in the archive (which may differ from what `desc` lists).
fn build(desc_text: &[u8], sig: Option<&Sig>, files: &[(&str, &[u8])]) -> Vec<u8> {
    write(Vec::new(), desc_text, sig, &mut |w| {
        for (name, data) in files {
            w.append_bytes(name, data)?;
        }
        Ok(())
    })
    .unwrap()
}

fn signed(files: &[(FileEntry, Vec<u8>)], signer: &SigningKey) -> Vec<u8> {
    let text = render(&description(files));
    let sig = Sig::sign(text.as_bytes(), signer);
    let archived: Vec<(&str, &[u8])> =
        files.iter().map(|(e, d)| (e.filename.as_str(), d.as_slice())).collect();
    build(text.as_bytes(), Some(&sig), &archived)
}

fn verify_all(bytes: &[u8], trusted: &[VerifyingKey]) -> Result<Description, Error> {
    open(bytes)?.verify(trusted)?.check_all()
}

fn err(bytes: &[u8], trusted: &[VerifyingKey]) -> String {
    verify_all(bytes, trusted).unwrap_err().to_string()
}

#[test]
fn signed_bundle_verifies_and_extracts_every_byte() {
    let files = files();
    let bytes = signed(&files, &key(1));
    let mut verified = open(&bytes[..]).unwrap().verify(&[key(1).verifying_key()]).unwrap();
    assert_eq!(verified.description, description(&files));
    assert_eq!(verified.signer, key(1).verifying_key());
    let mut got = Vec::new();
    while let Some(e) = verified.next_file().unwrap() {
        let mut data = Vec::new();
        verified.copy(&e, &mut data).unwrap();
        got.push((e, data));
    }
    assert_eq!(got, files);
}

#[test]
fn rendered_description_is_swupdate_shaped_for_goosebit() {
    let text = render(&description(&files()[..1]));
    let want = "software =\n{\n\tversion = \"1.2.3\";\n\tdescription = \"pocketses bundle\";\n\tpocketses-pc = {\n\t\thardware-compatibility = [ \"default\" ];\n\t};\n\timages = (\n\t\t{\n\t\t\tfilename = \"hello_1.assert\";\n\t\t\ttype = \"assertion\";\n\t\t\tsize = 47;\n\t\t\tsha256 = \"";
    assert!(text.starts_with(want), "{text}");
    assert!(text.ends_with("\";\n\t\t}\n\t);\n};\n"), "{text}");
}

#[test]
fn large_sizes_use_64_bit_integers() {
    let mut desc = description(&files());
    desc.files[1].size = 5_000_000_000;
    let text = render(&desc);
    assert!(text.contains("size = 5000000000L;"));
    assert_eq!(parse_description(text.as_bytes()).unwrap(), desc);
}

#[test]
fn description_round_trips() {
    let desc = description(&files());
    assert_eq!(parse_description(render(&desc).as_bytes()).unwrap(), desc);
    let plain = Description { hardware: vec![], files: vec![], ..desc };
    assert_eq!(parse_description(render(&plain).as_bytes()).unwrap(), plain);
}

#[test]
fn names_with_quotes_and_backslashes_round_trip() {
    let mut desc = description(&files());
    desc.files[0].filename = r#"a"b\c.snap"#.into();
    let text = render(&desc);
    assert!(text.contains(r#"filename = "a\"b\\c.snap";"#), "{text}");
    assert_eq!(parse_description(text.as_bytes()).unwrap(), desc);
}

#[test]
fn untrusted_key_is_refused_before_anything_is_read() {
    let files = files();
    let bytes = signed(&files, &key(2));
    let want = format!("signed by untrusted key {}", encode_public_key(&key(2).verifying_key()));
    assert_eq!(err(&bytes, &[key(1).verifying_key()]), want);
    assert_eq!(err(&bytes, &[]), "no trusted keys (set fleet.trusted-keys or pass --trusted)");
}

#[test]
fn tampered_description_fails_the_signature() {
    let files = files();
    let text = render(&description(&files));
    let sig = Sig::sign(text.as_bytes(), &key(1));
    let tampered = text.replace("1.2.3", "9.9.9");
    let archived: Vec<(&str, &[u8])> =
        files.iter().map(|(e, d)| (e.filename.as_str(), d.as_slice())).collect();
    let bytes = build(tampered.as_bytes(), Some(&sig), &archived);
    let k = encode_public_key(&key(1).verifying_key());
    assert_eq!(
        err(&bytes, &[key(1).verifying_key()]),
        format!("sw-description does not match its signature by {k}")
    );
}

#[test]
fn tampered_file_fails_its_hash() {
    let files = files();
    let mut bytes = signed(&files, &key(1));
    let at = bytes.windows(4).position(|w| w == b"hsqs").unwrap();
    bytes[at] = b'H';
    // The cpio byte sum changes too; fix it up so the sha256 is what catches it.
    let header_at = bytes[..at].windows(6).rposition(|w| w == b"070702").unwrap();
    let check_at = header_at + 6 + 12 * 8;
    let old = u32::from_str_radix(std::str::from_utf8(&bytes[check_at..check_at + 8]).unwrap(), 16)
        .unwrap();
    let new = format!("{:08X}", old - u32::from(b'h') + u32::from(b'H'));
    bytes[check_at..check_at + 8].copy_from_slice(new.as_bytes());
    let e = err(&bytes, &[key(1).verifying_key()]);
    assert!(e.starts_with("file \"hello_1.snap\" does not match its sha256 (got "), "{e}");
}

#[test]
fn archive_must_match_the_listing() {
    let files = files();
    let text = render(&description(&files));
    let sig = Sig::sign(text.as_bytes(), &key(1));
    let trusted = [key(1).verifying_key()];
    let a: &[u8] = &files[0].1;
    let b: &[u8] = &files[1].1;
    let c: &[u8] = &files[2].1;
    for (archived, want) in [
        (
            vec![("hello_1.assert", a), ("hello_1.snap", b)],
            "file \"new.model\" listed in sw-description is missing",
        ),
        (
            vec![("hello_1.assert", a), ("other", b)],
            "file \"other\" is not listed in sw-description",
        ),
        (
            vec![("hello_1.assert", a), ("hello_1.assert", a)],
            "file \"hello_1.assert\" appears twice",
        ),
        (
            vec![("hello_1.assert", b)],
            "file \"hello_1.assert\" is 14 bytes, sw-description says 47",
        ),
        (
            vec![("hello_1.assert", a), ("hello_1.snap", b), ("new.model", c), ("extra", a)],
            "file \"extra\" is not listed in sw-description",
        ),
    ] {
        let bytes = build(text.as_bytes(), Some(&sig), &archived);
        assert_eq!(err(&bytes, &trusted), want);
    }
}

#[test]
fn oversize_entry_is_refused_from_its_header() {
    let small = entry("a.snap", Kind::Snap, b"abc");
    let text = render(&Description { version: "1".into(), hardware: vec![], files: vec![small] });
    let sig = Sig::sign(text.as_bytes(), &key(1));
    let bytes = build(text.as_bytes(), Some(&sig), &[("a.snap", &[0u8; 100])]);
    assert_eq!(
        err(&bytes, &[key(1).verifying_key()]),
        "entry \"a.snap\" is 100 bytes, more than the 3 allowed"
    );
}

#[test]
fn head_refusals() {
    let trusted = [key(1).verifying_key()];
    let text = render(&description(&[]));
    let unsigned = build(text.as_bytes(), None, &[]);
    assert_eq!(
        err(&unsigned, &trusted),
        "bundle is not signed (no sw-description.sig after sw-description)"
    );
    let wrong_first = build(b"x", None, &[]);
    let mut w = cpio::Writer::new(Vec::new());
    w.append_bytes("other", b"x").unwrap();
    let other_first = w.finish().unwrap();
    assert_eq!(err(&other_first, &trusted), "first entry is \"other\", not \"sw-description\"");
    assert!(open(&wrong_first[..]).is_ok());
    let mut w = cpio::Writer::new(Vec::new());
    w.append_bytes(DESCRIPTION, text.as_bytes()).unwrap();
    w.append_bytes(SIGNATURE, b"rsa x y").unwrap();
    let bad_sig = w.finish().unwrap();
    assert_eq!(
        err(&bad_sig, &trusted),
        "invalid sw-description.sig: unsupported algorithm \"rsa\""
    );
    let empty = cpio::Writer::new(Vec::new()).finish().unwrap();
    assert_eq!(err(&empty, &trusted), "first entry is \"\", not \"sw-description\"");
}

#[test]
fn description_refusals() {
    let sha = "a".repeat(64);
    for (text, want) in [
        ("x = 1;".to_owned(), "invalid sw-description: no \"software\" group"),
        ("software = { };".to_owned(), "invalid sw-description: no software.version string"),
        ("software = { version = \"abc\"; };".to_owned(), "invalid sw-description: invalid software.version \"abc\""),
        ("software = { version = \"1\"; images = 3; };".to_owned(), "invalid sw-description: software.images is not a list"),
        (format!("software = {{ version = \"1\"; images = ( {{ filename = \"../x\"; type = \"snap\"; size = 1; sha256 = \"{sha}\"; }} ); }};"), "invalid sw-description: software.images[0]: invalid entry name \"../x\": \"..\" in path"),
        (format!("software = {{ version = \"1\"; images = ( {{ filename = \"x\"; type = \"kernel\"; size = 1; sha256 = \"{sha}\"; }} ); }};"), "invalid sw-description: software.images[0] has unknown type \"kernel\""),
        (format!("software = {{ version = \"1\"; images = ( {{ filename = \"x\"; type = \"snap\"; size = -1; sha256 = \"{sha}\"; }} ); }};"), "invalid sw-description: software.images[0] has no size in bytes"),
        ("software = { version = \"1\"; images = ( { filename = \"x\"; type = \"snap\"; size = 1; sha256 = \"ab\"; } ); };".to_owned(), "invalid sw-description: software.images[0] has an invalid sha256"),
        (format!("software = {{ version = \"1\"; images = ( {{ filename = \"sw-description\"; type = \"snap\"; size = 1; sha256 = \"{sha}\"; }} ); }};"), "invalid sw-description: software.images[0] names \"sw-description\""),
        (format!("software = {{ version = \"1\"; images = ( {{ filename = \"x\"; type = \"model\"; size = 1; sha256 = \"{sha}\"; }}, {{ filename = \"y\"; type = \"model\"; size = 1; sha256 = \"{sha}\"; }} ); }};"), "invalid sw-description: more than one model"),
        (format!("software = {{ version = \"1\"; images = ( {{ filename = \"x\"; type = \"snap\"; size = 1; sha256 = \"{sha}\"; }}, {{ filename = \"x\"; type = \"snap\"; size = 1; sha256 = \"{sha}\"; }} ); }};"), "invalid sw-description: \"x\" is listed twice"),
        ("software = { version = 1 };".to_owned(), "invalid sw-description: no software.version string"),
        ("software = {".to_owned(), "invalid sw-description: line 1: unexpected end of input"),
    ] {
        assert_eq!(parse_description(text.as_bytes()).unwrap_err().to_string(), want, "{text}");
    }
}

#[test]
fn unknown_settings_are_ignored() {
    let text = "software = { version = \"2.0\"; bootloader_transaction_marker = false; \
                board = { hardware-compatibility = [ \"1.0\" ]; }; images = (); };";
    let d = parse_description(text.as_bytes()).unwrap();
    assert_eq!(d.version, "2.0");
    assert_eq!(d.hardware, vec!["board".to_owned()]);
}

#[test]
fn versions_goosebit_accepts() {
    for ok in [
        "1",
        "1.2",
        "1.2.3",
        "1.2.3.4",
        "65535.0",
        "1.2.3-rc.1",
        "1.0.0+build.5",
        "1.0.0-alpha+001",
    ] {
        assert_eq!(check_version(ok), Ok(()), "{ok}");
    }
    for bad in ["", "v1", "1.2.3.4.5", "1.-2", "1.2.3-", "1..2", "1.2.3 ", "abc", "70000.1.2.3"] {
        assert!(check_version(bad).is_err(), "{bad}");
    }
}

#[test]
fn hardware_names() {
    assert_eq!(check_hardware("pocketses-pc"), Ok(()));
    for bad in ["1pc", "", "a b", "a.b", "images", "version"] {
        assert!(check_hardware(bad).is_err(), "{bad}");
    }
}

#[test]
fn kinds_are_detected_from_content_and_name() {
    assert_eq!(Kind::detect("x", b"type: model\nauthority-id: a"), Ok(Kind::Model));
    assert_eq!(Kind::detect("x.assert", b"type: account-key\n"), Ok(Kind::Assertion));
    assert_eq!(Kind::detect("x.snap", b"hsqs"), Ok(Kind::Snap));
    assert_eq!(
        Kind::detect("notes.txt", b"hello").unwrap_err().to_string(),
        "\"notes.txt\" is neither a snap (.snap) nor an assertion (starting with \"type: \")"
    );
}

#[test]
fn public_keys_round_trip_and_bad_ones_are_named() {
    let k = key(3).verifying_key();
    let text = encode_public_key(&k);
    assert_eq!(text.len(), 44);
    assert_eq!(parse_public_key(&text), Ok(k));
    assert_eq!(parse_public_keys(&format!("# operator\n{text}, {text}\n\n")), Ok(vec![k, k]));
    assert_eq!(parse_public_key("!!"), Err("invalid ed25519 public key \"!!\": not base64".into()));
    assert_eq!(
        parse_public_key("AAAA"),
        Err("invalid ed25519 public key \"AAAA\": 3 bytes, want 32".into())
    );
}

#[test]
fn signature_file_round_trips() {
    let sig = Sig::sign(b"text", &key(4));
    assert_eq!(Sig::parse(sig.render().as_bytes()), Ok(sig.clone()));
    assert!(sig.render().starts_with("ed25519 "));
    assert_eq!(sig.verify(b"text", &[key(4).verifying_key()]), Ok(()));
    for bad in [&b"ed25519 x"[..], b"\xff", b"ed25519 AAAA AAAA"] {
        assert!(Sig::parse(bad).is_err());
    }
}

#[test]
fn resigning_keeps_the_files() {
    let files = files();
    let bytes = signed(&files, &key(1));
    let head = open(&bytes[..]).unwrap();
    let text = head.description.clone();
    let sig = Sig::sign(&text, &key(5));
    let mut rest = Vec::new();
    head.for_each_rest(&mut |h, data| {
        let mut v = Vec::new();
        data.read_to_end(&mut v).map_err(cpio::Error::from)?;
        rest.push((h.name.clone(), v));
        Ok(())
    })
    .unwrap();
    let refs: Vec<(&str, &[u8])> = rest.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    let resigned = build(&text, Some(&sig), &refs);
    assert_eq!(verify_all(&resigned, &[key(5).verifying_key()]).unwrap(), description(&files));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_bundles_never_panic_nor_pass_with_a_changed_byte(
        at in any::<usize>(), byte in any::<u8>(),
    ) {
        let files = files();
        let bytes = signed(&files, &key(1));
        let mut mutated = bytes.clone();
        let i = at % mutated.len();
        mutated[i] = byte;
        let result = verify_all(&mutated, &[key(1).verifying_key()]);
        if mutated != bytes {
            // A changed byte is either padding/an ignored header field, or refused.
            if let Ok(desc) = result {
                prop_assert_eq!(desc, description(&files));
            }
        }
    }

    #[test]
    fn arbitrary_descriptions_never_panic(text in "[ -~\n]{0,300}") {
        let _ = parse_description(text.as_bytes());
    }
}
