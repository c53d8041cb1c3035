//! Signing: headers + body + RSA key → a signed assertion, byte-for-byte as snapd's own signer. \[pure\]
//!
//! snapd's `Database.Sign` writes one OpenPGP v4 signature packet: binary type, RSA,
//! SHA-512, a hashed creation-time subpacket and nothing else (no issuer), and the RSA value
//! as a full-length MPI (its bit count is 8 × the key size in bytes, as Go's x/crypto writes it).
//! The caller picks the creation time, which makes output reproducible.

use super::encode::{canonical_content, EncodeError};
use super::openpgp::{encode_v1, PublicKey, SignaturePacket, HASH_SHA512};
use super::{Assertion, Headers, ParseError, Value};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha2::{Digest as _, Sha512};

/// Why an assertion cannot be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The headers cannot be written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The RSA operation failed.
    #[error("cannot sign assertion: {0}")]
    Rsa(String),
    /// The result does not decode (an internal error). The message includes the parse error,
    /// which is therefore not also its `source()`.
    #[error("internal error: {0}")]
    Decode(ParseError),
}

impl From<ParseError> for SignError {
    fn from(err: ParseError) -> Self {
        SignError::Decode(err)
    }
}

/// Signs `content` with `key`, returning the signature block without its final newline (snapd's `signContent`).
///
/// # Errors
/// When the RSA operation fails.
pub fn sign_content(
    content: &[u8],
    key: &RsaPrivateKey,
    creation_time: u32,
) -> Result<String, SignError> {
    let mut hashed = vec![5, 2];
    hashed.extend_from_slice(&creation_time.to_be_bytes());
    let mut packet = SignaturePacket {
        sig_type: 0,
        pubkey_algo: 1,
        hash_algo: HASH_SHA512,
        hashed,
        unhashed: Vec::new(),
        hash_prefix: [0, 0],
        signature: Vec::new(),
        signature_bits: 0,
        creation_time,
        issuers: Vec::new(),
    };
    let mut h = Sha512::new();
    h.update(content);
    h.update(packet.hash_suffix());
    let digest = h.finalize();
    packet.hash_prefix = [digest[0], digest[1]];
    let signature = key
        .sign_with_rng(&mut rand::rngs::OsRng, Pkcs1v15Sign::new::<Sha512>(), &digest)
        .map_err(|e| SignError::Rsa(e.to_string()))?;
    packet.signature_bits =
        u16::try_from(signature.len() * 8).map_err(|_| SignError::Rsa("key too large".into()))?;
    packet.signature = signature;
    Ok(encode_v1(&packet.serialize()))
}

/// Assembles and signs an assertion as snapd's `assembleAndSign`: sets `sign-key-sha3-384`
/// and `body-length`, writes the canonical content, signs it, and appends the final `"\n"`.
///
/// # Errors
/// When the headers cannot be written or signing fails.
pub fn sign(
    headers: &Headers,
    body: &str,
    key: &RsaPrivateKey,
    creation_time: u32,
) -> Result<Assertion, SignError> {
    let public = PublicKey::from_rsa(key.to_public_key());
    let mut h = headers.clone();
    h.insert("sign-key-sha3-384", Value::String(public.id().to_owned()));
    let (fin, content) = canonical_content(&h, body)?;
    let mut signature = sign_content(&content, key, creation_time)?.into_bytes();
    signature.push(b'\n');
    Ok(Assertion::assemble(fin, body.to_owned(), content, signature)?)
}

#[cfg(test)]
mod tests {
    use super::super::openpgp::PublicKey;
    use super::super::verify::{decode_signature, verify, VerifyError};
    use super::super::{decode, encode};
    use super::*;
    use rsa::pkcs1::DecodeRsaPrivateKey as _;

    #[test]
    fn sign_errors_name_their_cause_once() {
        let encode = SignError::from(EncodeError("header \"x\" is bad".into()));
        let decode = SignError::from(ParseError::NoSeparator);
        for (err, part) in [(encode, "is bad"), (decode, "separator not found")] {
            let chain = format!("{:#}", anyhow::Error::new(err));
            assert_eq!(chain.matches(part).count(), 1, "{chain}");
        }
    }

    fn key(pem: &str) -> RsaPrivateKey {
        RsaPrivateKey::from_pkcs1_pem(pem).unwrap()
    }

    fn brand() -> RsaPrivateKey {
        key(include_str!("../../tests/fixtures/assertions/keys/brand.pem"))
    }

    fn account_headers() -> Headers {
        [
            ("type", "account"),
            ("authority-id", "testroot"),
            ("account-id", "x1"),
            ("display-name", "X"),
            ("validation", "unproven"),
            ("timestamp", "2024-01-01T00:00:00Z"),
        ]
        .into_iter()
        .map(|(n, v)| (n.to_owned(), Value::from(v)))
        .collect()
    }

    #[test]
    fn packet_is_what_snapds_signer_writes() {
        let a = sign(&account_headers(), "", &brand(), 0x6592_0080).unwrap();
        assert!(a.signature().ends_with(b"\n"));
        assert!(a.signature().split(|c| *c == b'\n').all(|l| l.len() <= 76));
        let p = decode_signature(a.signature()).unwrap();
        assert_eq!((p.sig_type, p.pubkey_algo, p.hash_algo), (0, 1, 10));
        assert_eq!(p.hashed, [5, 2, 0x65, 0x92, 0x00, 0x80]);
        assert!(p.unhashed.is_empty() && p.issuers.is_empty(), "snapd's signer writes no issuer");
        assert_eq!((p.signature.len(), p.signature_bits), (512, 4096));
        assert_eq!(p.creation_time, 0x6592_0080);
        // decoding gives back the same assertion
        assert_eq!(decode(&encode(&a)).unwrap(), a);
    }

    #[test]
    fn verifies_with_its_key_only() {
        let a = sign(&account_headers(), "body\n", &brand(), 1).unwrap();
        let public = PublicKey::from_rsa(brand().to_public_key());
        assert_eq!(a.sign_key_id(), public.id());
        verify(&a, &public).unwrap();
        let other = PublicKey::from_rsa(
            key(include_str!("../../tests/fixtures/assertions/keys/other.pem")).to_public_key(),
        );
        assert!(matches!(verify(&a, &other), Err(VerifyError::Mismatch(_))));
    }

    #[test]
    fn same_input_same_bytes() {
        let one = sign(&account_headers(), "", &brand(), 7).unwrap();
        let two = sign(&account_headers(), "", &brand(), 7).unwrap();
        assert_eq!(encode(&one), encode(&two));
        let later = sign(&account_headers(), "", &brand(), 8).unwrap();
        assert_ne!(encode(&one), encode(&later));
    }

    #[test]
    fn non_canonical_signature_text_is_refused() {
        let a = sign(&account_headers(), "", &brand(), 1).unwrap();
        let text = String::from_utf8(encode(&a)).unwrap();
        let (content, sig) = text.rsplit_once("\n\n").unwrap();
        let rewrapped = format!("{content}\n\n{}", sig.replace('\n', ""));
        let b = decode(rewrapped.as_bytes()).unwrap();
        let public = PublicKey::from_rsa(brand().to_public_key());
        assert_eq!(
            verify(&b, &public),
            Err(VerifyError::Decode("signature is not in canonical form".into()))
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 16, ..Default::default() })]

        #[test]
        fn signed_assertions_decode_and_verify(
            extra in proptest::collection::btree_map("[a-z]{1,8}", "[ -~\n]{0,30}", 0..5),
            body in "[ -~\n]{0,60}",
            when in 0u32..u32::MAX,
        ) {
            let mut headers = account_headers();
            for (name, value) in &extra {
                if !headers.contains(name) {
                    headers.insert(name, Value::String(value.clone()));
                }
            }
            let a = sign(&headers, &body, &brand(), when).unwrap();
            let back = decode(&encode(&a)).unwrap();
            proptest::prop_assert_eq!(&back, &a);
            proptest::prop_assert_eq!(back.body(), body.as_str());
            verify(&back, &PublicKey::from_rsa(brand().to_public_key())).unwrap();
            proptest::prop_assert_eq!(decode_signature(back.signature()).unwrap().creation_time, when);
        }
    }
}
