//! Verification of one assertion's signature against one public key, as snapd's `CheckSignature`. \[pure\]
//!
//! Like snapd, the issuer key id in the packet is not compared with the key: real Canonical
//! signatures carry ids that do not match the normalised key. Unlike snapd, the signature block
//! must be in the canonical form snapd writes (76-column base64 of the packet, optional final
//! newline) and the unhashed area may hold only issuer ids, so that no byte outside the issuer
//! ids can change without the signature failing.

use super::openpgp::{
    decode_v1, encode_v1, read_single_packet, PublicKey, SignaturePacket, HASH_SHA224, HASH_SHA256,
    HASH_SHA384, HASH_SHA512, TAG_SIGNATURE,
};
use super::Assertion;
use rsa::traits::PublicKeyParts as _;
use rsa::Pkcs1v15Sign;
use sha2::Digest as _;

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature block cannot be read.
    #[error("{0}")]
    Decode(String),
    /// The signature does not match the content and key.
    #[error("failed signature verification: {0}")]
    Mismatch(String),
}

/// Decodes an assertion's signature block into its packet (snapd's `decodeSignature`).
///
/// # Errors
/// snapd's decoding messages, plus `signature is not in canonical form`.
pub fn decode_signature(block: &[u8]) -> Result<SignaturePacket, VerifyError> {
    let raw = decode_v1(block, "signature").map_err(|e| VerifyError::Decode(e.0))?;
    let (tag, body) =
        read_single_packet(&raw, "signature").map_err(|e| VerifyError::Decode(e.0))?;
    if tag != TAG_SIGNATURE {
        return Err(VerifyError::Decode(format!(
            "expected signature, got instead: packet type {tag}"
        )));
    }
    let packet = SignaturePacket::parse(body).map_err(|e| VerifyError::Decode(e.0))?;
    let canonical = encode_v1(&raw);
    let text = block.strip_suffix(b"\n").unwrap_or(block);
    if text != canonical.as_bytes() {
        return Err(VerifyError::Decode("signature is not in canonical form".into()));
    }
    Ok(packet)
}

fn digest(algo: u8, parts: &[&[u8]]) -> Option<(Vec<u8>, Pkcs1v15Sign)> {
    macro_rules! run {
        ($d:ty) => {{
            let mut h = <$d>::new();
            for p in parts {
                h.update(p);
            }
            Some((h.finalize().to_vec(), Pkcs1v15Sign::new::<$d>()))
        }};
    }
    match algo {
        HASH_SHA224 => run!(sha2::Sha224),
        HASH_SHA256 => run!(sha2::Sha256),
        HASH_SHA384 => run!(sha2::Sha384),
        HASH_SHA512 => run!(sha2::Sha512),
        _ => None,
    }
}

/// Verifies `signature` over `content` with `key` (x/crypto's `VerifySignature` for RSA).
///
/// # Errors
/// Why it does not verify.
pub fn verify_content(
    content: &[u8],
    signature: &[u8],
    key: &PublicKey,
) -> Result<(), VerifyError> {
    let packet = decode_signature(signature)?;
    let mismatch = |m: &str| Err(VerifyError::Mismatch(m.to_owned()));
    if !matches!(packet.pubkey_algo, 1 | 3) {
        return mismatch("public key and signature use different algorithms");
    }
    let suffix = packet.hash_suffix();
    let Some((hash, scheme)) = digest(packet.hash_algo, &[content, &suffix]) else {
        return mismatch("unsupported hash function");
    };
    if hash[..2] != packet.hash_prefix {
        return mismatch("hash tag doesn't match");
    }
    let size = key.rsa().size();
    if packet.signature.len() > size {
        return mismatch("RSA verification failure");
    }
    let mut sig = vec![0u8; size - packet.signature.len()];
    sig.extend_from_slice(&packet.signature);
    key.rsa().verify(scheme, &hash, &sig).or_else(|_| mismatch("RSA verification failure"))
}

/// Verifies an assertion's signature with `key`.
///
/// # Errors
/// As [`verify_content`].
pub fn verify(assertion: &Assertion, key: &PublicKey) -> Result<(), VerifyError> {
    verify_content(assertion.content(), assertion.signature(), key)
}
