//! The small part of OpenPGP that snapd uses: RSA public-key and signature packets, and the
//! `0x01`-prefixed base64 wrapping of both. \[pure\]
//!
//! Only what snapd's `asserts/crypto.go` reads and writes is here; there is no keyring,
//! no armour, no encryption. Keys are RSA only, because snapd accepts nothing else.

use base64::Engine as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{BigUint, RsaPublicKey};
use sha3::Digest as _;

/// 2016-01-01T00:00:00Z: the creation time snapd writes in every public key packet.
pub const FIXED_KEY_TIME: u32 = 0x5685_C180;

/// OpenPGP packet tags used here.
pub const TAG_SIGNATURE: u8 = 2;
/// Public-key packet tag.
pub const TAG_PUBLIC_KEY: u8 = 6;
/// Public-subkey packet tag (snapd's parser accepts it where a key is expected).
pub const TAG_PUBLIC_SUBKEY: u8 = 14;

/// Why a key or signature cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PacketError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, PacketError> {
    Err(PacketError(m.into()))
}

/// `base64(0x01 || data)` wrapped at 76 columns, no final newline (snapd's `encodeV1`).
pub fn encode_v1(data: &[u8]) -> String {
    let mut raw = Vec::with_capacity(data.len() + 1);
    raw.push(1);
    raw.extend_from_slice(data);
    let flat = base64::engine::general_purpose::STANDARD.encode(raw);
    let lines: Vec<&str> =
        flat.as_bytes().chunks(76).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    lines.join("\n")
}

/// Decodes snapd's v1 wrapping: base64 (newlines and carriage returns ignored, as Go's decoder does),
/// then the `0x01` format byte. `kind` names the thing in messages ("signature", "public key").
///
/// # Errors
/// snapd's messages: `cannot decode …`, `unsupported … format version: N`.
pub fn decode_v1(text: &[u8], kind: &str) -> Result<Vec<u8>, PacketError> {
    if text.is_empty() {
        return err(format!("cannot decode {kind}: no data"));
    }
    let cleaned: Vec<u8> = text.iter().copied().filter(|c| *c != b'\n' && *c != b'\r').collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    let raw =
        engine.decode(cleaned).map_err(|e| PacketError(format!("cannot decode {kind}: {e}")))?;
    match raw.first() {
        None => err(format!("cannot decode {kind}: base64 without data")),
        Some(1) => Ok(raw[1..].to_vec()),
        Some(v) => err(format!("unsupported {kind} format version: {v}")),
    }
}

/// Appends a new-format packet header (snapd's `serializeHeader`).
pub fn write_header(out: &mut Vec<u8>, tag: u8, len: usize) {
    out.push(0xC0 | tag);
    if len < 192 {
        out.push(u8::try_from(len).unwrap_or(0));
    } else if len < 8384 {
        let l = len - 192;
        out.push(u8::try_from((l >> 8) + 192).unwrap_or(0));
        out.push(u8::try_from(l & 0xFF).unwrap_or(0));
    } else {
        out.push(0xFF);
        out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    }
}

/// Reads one whole packet: `(tag, body)`; the input must hold exactly one packet.
///
/// # Errors
/// When the framing is broken, or `kind has spurious trailing data`.
pub fn read_single_packet<'a>(data: &'a [u8], kind: &str) -> Result<(u8, &'a [u8]), PacketError> {
    let bad = |m: &str| PacketError(format!("cannot decode {kind}: {m}"));
    let first = *data.first().ok_or_else(|| bad("unexpected EOF"))?;
    if first & 0x80 == 0 {
        return Err(bad("tag byte does not have MSB set"));
    }
    let rest = &data[1..];
    let (tag, len, hdr) = if first & 0x40 != 0 {
        let tag = first & 0x3F;
        match rest {
            [a, ..] if *a < 192 => (tag, usize::from(*a), 1),
            [a, b, ..] if *a < 224 => {
                (tag, (usize::from(*a) - 192) * 256 + usize::from(*b) + 192, 2)
            }
            [255, a, b, c, d, ..] => (tag, u32::from_be_bytes([*a, *b, *c, *d]) as usize, 5),
            [a, ..] if *a < 255 => return Err(bad("partial body lengths are not supported")),
            _ => return Err(bad("unexpected EOF")),
        }
    } else {
        let tag = (first & 0x3F) >> 2;
        match (first & 3, rest) {
            (0, [a, ..]) => (tag, usize::from(*a), 1),
            (1, [a, b, ..]) => (tag, usize::from(u16::from_be_bytes([*a, *b])), 2),
            (2, [a, b, c, d, ..]) => (tag, u32::from_be_bytes([*a, *b, *c, *d]) as usize, 4),
            (3, _) => (tag, rest.len(), 0),
            _ => return Err(bad("unexpected EOF")),
        }
    };
    let body = &rest[hdr..];
    if body.len() < len {
        return Err(bad("unexpected EOF"));
    }
    if body.len() > len {
        return err(format!("{kind} has spurious trailing data"));
    }
    Ok((tag, body))
}

/// Reads an MPI: `(bytes, rest)`.
fn read_mpi(data: &[u8]) -> Result<(&[u8], &[u8]), PacketError> {
    let [a, b, rest @ ..] = data else { return err("unexpected EOF") };
    let bits = usize::from(u16::from_be_bytes([*a, *b]));
    let n = bits.div_ceil(8);
    if rest.len() < n {
        return err("unexpected EOF");
    }
    Ok(rest.split_at(n))
}

/// Appends a minimal MPI (bit count of the value, then its big-endian bytes).
fn write_mpi(out: &mut Vec<u8>, value: &BigUint) {
    let bytes = value.to_bytes_be();
    let bits = u16::try_from(value.bits()).unwrap_or(u16::MAX);
    out.extend_from_slice(&bits.to_be_bytes());
    out.extend_from_slice(&bytes);
}

/// An RSA public key as snapd sees it: `(n, e)` plus the id derived from its normalised packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: RsaPublicKey,
    id: String,
}

impl PublicKey {
    /// Wraps an RSA key, computing its `sha3-384` id.
    pub fn from_rsa(key: RsaPublicKey) -> PublicKey {
        let mut p = PublicKey { key, id: String::new() };
        let mut h = sha3::Sha3_384::new();
        h.update([1u8]);
        h.update(p.packet());
        p.id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize());
        p
    }

    /// The v4 public-key packet with snapd's fixed creation time, header included.
    pub fn packet(&self) -> Vec<u8> {
        let mut body = vec![4];
        body.extend_from_slice(&FIXED_KEY_TIME.to_be_bytes());
        body.push(1);
        write_mpi(&mut body, self.key.n());
        write_mpi(&mut body, self.key.e());
        let mut out = Vec::with_capacity(body.len() + 3);
        write_header(&mut out, TAG_PUBLIC_KEY, body.len());
        out.extend_from_slice(&body);
        out
    }

    /// `sign-key-sha3-384` / `public-key-sha3-384`: base64url(SHA3-384(0x01 || packet)).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The RSA key.
    pub fn rsa(&self) -> &RsaPublicKey {
        &self.key
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// The body of an `account-key` assertion for this key (76-column base64, no final newline).
    pub fn encode(&self) -> String {
        encode_v1(&self.packet())
    }

    /// The OpenPGP v4 key id (low 8 bytes of the SHA-1 fingerprint) of the normalised packet,
    /// which gpg and the store write as the signature issuer.
    pub fn openpgp_key_id(&self) -> [u8; 8] {
        use sha1::Digest as _;
        let packet = self.packet();
        let (_, body) = read_single_packet(&packet, "public key").unwrap_or((0, &[]));
        let mut h = sha1::Sha1::new();
        h.update([0x99]);
        h.update(u16::try_from(body.len()).unwrap_or(0).to_be_bytes());
        h.update(body);
        let fp = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&fp[12..20]);
        id
    }

    /// Decodes an `account-key` body (snapd's `DecodePublicKey`): the creation time in the
    /// packet is ignored, the key is re-created with the fixed one.
    ///
    /// # Errors
    /// snapd's messages when the body is not an RSA public key.
    pub fn decode(body: &[u8]) -> Result<PublicKey, PacketError> {
        let data = decode_v1(body, "public key")?;
        let (tag, body) = read_single_packet(&data, "public key")?;
        if tag != TAG_PUBLIC_KEY && tag != TAG_PUBLIC_SUBKEY {
            return err(format!("expected public key, got instead: packet type {tag}"));
        }
        let bad = |m: &str| PacketError(format!("cannot decode public key: {m}"));
        let [4, _, _, _, _, algo, rest @ ..] = body else {
            return Err(bad("public key version or length not supported"));
        };
        if !matches!(algo, 1..=3) {
            return err(format!("expected RSA public key, got instead: algorithm {algo}"));
        }
        let (n, rest) = read_mpi(rest).map_err(|e| bad(&e.0))?;
        let (e, rest) = read_mpi(rest).map_err(|e| bad(&e.0))?;
        if !rest.is_empty() {
            return err("public key has spurious trailing data");
        }
        if e.len() > 3 {
            return Err(bad("large public exponent"));
        }
        let key = RsaPublicKey::new_with_max_size(
            BigUint::from_bytes_be(n),
            BigUint::from_bytes_be(e),
            16384,
        )
        .map_err(|e| bad(&e.to_string()))?;
        Ok(PublicKey::from_rsa(key))
    }
}

/// OpenPGP hash algorithm ids this implementation verifies.
pub const HASH_SHA256: u8 = 8;
/// SHA-384.
pub const HASH_SHA384: u8 = 9;
/// SHA-512, the only one snapd signs with.
pub const HASH_SHA512: u8 = 10;
/// SHA-224.
pub const HASH_SHA224: u8 = 11;

/// A parsed v4 signature packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturePacket {
    /// Signature type (0x00 = binary document).
    pub sig_type: u8,
    /// Public-key algorithm (1 = RSA).
    pub pubkey_algo: u8,
    /// Hash algorithm (10 = SHA-512).
    pub hash_algo: u8,
    /// The hashed subpacket area.
    pub hashed: Vec<u8>,
    /// The unhashed subpacket area.
    pub unhashed: Vec<u8>,
    /// The first two bytes of the digest.
    pub hash_prefix: [u8; 2],
    /// The RSA signature value as written.
    pub signature: Vec<u8>,
    /// The bit count written in the signature MPI header.
    pub signature_bits: u16,
    /// Creation time from the hashed area.
    pub creation_time: u32,
    /// Issuer key ids found in either area.
    pub issuers: Vec<[u8; 8]>,
}

/// One subpacket: `(type without the critical bit, critical, data)`.
type Subpacket<'a> = (u8, bool, &'a [u8]);

fn subpackets(mut area: &[u8]) -> Result<Vec<Subpacket<'_>>, PacketError> {
    let mut out = Vec::new();
    while !area.is_empty() {
        let (len, hdr) = match area {
            [a, ..] if *a < 192 => (usize::from(*a), 1),
            [a, b, ..] if *a < 255 => ((usize::from(*a) - 192) * 256 + usize::from(*b) + 192, 2),
            [255, a, b, c, d, ..] => (u32::from_be_bytes([*a, *b, *c, *d]) as usize, 5),
            _ => return err("signature subpacket truncated"),
        };
        if len == 0 || area.len() < hdr + len {
            return err("signature subpacket truncated");
        }
        let typ = area[hdr];
        out.push((typ & 0x7F, typ & 0x80 != 0, &area[hdr + 1..hdr + len]));
        area = &area[hdr + len..];
    }
    Ok(out)
}

impl SignaturePacket {
    /// Parses the body of a signature packet like x/crypto's `Signature.parse`, a little stricter:
    /// no bytes may follow the signature value and the unhashed area may hold only issuer ids
    /// (anything else there would be unsigned data a verifier silently accepts).
    ///
    /// # Errors
    /// The first structural problem.
    pub fn parse(body: &[u8]) -> Result<SignaturePacket, PacketError> {
        let bad = |m: &str| PacketError(format!("cannot decode signature: {m}"));
        let [version, rest @ ..] = body else { return Err(bad("unexpected EOF")) };
        if *version != 4 {
            return Err(bad(&format!("signature packet version {version} not supported")));
        }
        let [sig_type, pubkey_algo, hash_algo, h1, h2, rest @ ..] = rest else {
            return Err(bad("unexpected EOF"));
        };
        if !matches!(pubkey_algo, 1 | 3) {
            return Err(bad(&format!("public key algorithm {pubkey_algo} not supported")));
        }
        if !matches!(*hash_algo, HASH_SHA256 | HASH_SHA384 | HASH_SHA512 | HASH_SHA224) {
            return Err(bad(&format!("hash function {hash_algo} not supported")));
        }
        let hashed_len = usize::from(u16::from_be_bytes([*h1, *h2]));
        if rest.len() < hashed_len + 2 {
            return Err(bad("unexpected EOF"));
        }
        let (hashed, rest) = rest.split_at(hashed_len);
        let unhashed_len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let rest = &rest[2..];
        if rest.len() < unhashed_len + 2 {
            return Err(bad("unexpected EOF"));
        }
        let (unhashed, rest) = rest.split_at(unhashed_len);
        let hash_prefix = [rest[0], rest[1]];
        let rest = &rest[2..];
        let [b1, b2, ..] = rest else { return Err(bad("unexpected EOF")) };
        let signature_bits = u16::from_be_bytes([*b1, *b2]);
        let (signature, rest) = read_mpi(rest).map_err(|e| bad(&e.0))?;
        if !rest.is_empty() {
            return err("signature has spurious trailing data");
        }
        // gpg writes the value's exact bit count, Go's x/crypto (snapd's signer) 8 × its byte
        // length; any other count is a malleable, unsigned variation of one of them.
        let minimal = signature.iter().position(|b| *b != 0).map_or(0, |i| {
            (signature.len() - i) * 8 - usize::try_from(signature[i].leading_zeros()).unwrap_or(0)
        });
        let bits = usize::from(signature_bits);
        if bits != minimal && bits != signature.len() * 8 {
            return Err(bad("signature value has a non-canonical bit count"));
        }
        let mut creation_time = None;
        let mut issuers = Vec::new();
        for (typ, critical, data) in subpackets(hashed).map_err(|e| bad(&e.0))? {
            match typ {
                2 => {
                    let [a, b, c, d] = data else {
                        return Err(bad("signature creation time not four bytes"));
                    };
                    creation_time = Some(u32::from_be_bytes([*a, *b, *c, *d]));
                }
                16 => {
                    let id: [u8; 8] =
                        data.try_into().map_err(|_| bad("issuer subpacket with bad length"))?;
                    issuers.push(id);
                }
                _ if critical => {
                    return Err(bad(&format!("unknown critical signature subpacket type {typ}")))
                }
                _ => {}
            }
        }
        for (typ, critical, data) in subpackets(unhashed).map_err(|e| bad(&e.0))? {
            if typ != 16 || critical {
                return Err(bad(&format!("unexpected unhashed signature subpacket type {typ}")));
            }
            let id: [u8; 8] =
                data.try_into().map_err(|_| bad("issuer subpacket with bad length"))?;
            issuers.push(id);
        }
        let creation_time = creation_time.ok_or_else(|| bad("no creation time in signature"))?;
        Ok(SignaturePacket {
            sig_type: *sig_type,
            pubkey_algo: *pubkey_algo,
            hash_algo: *hash_algo,
            hashed: hashed.to_vec(),
            unhashed: unhashed.to_vec(),
            hash_prefix,
            signature: signature.to_vec(),
            signature_bits,
            creation_time,
            issuers,
        })
    }

    /// The bytes hashed after the content: `04 type algo hash len(2) hashed 04 FF len(4)`.
    pub fn hash_suffix(&self) -> Vec<u8> {
        let mut out = vec![4, self.sig_type, self.pubkey_algo, self.hash_algo];
        out.extend_from_slice(&u16::try_from(self.hashed.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.hashed);
        out.extend_from_slice(&[4, 0xFF]);
        out.extend_from_slice(&u32::try_from(6 + self.hashed.len()).unwrap_or(0).to_be_bytes());
        out
    }

    /// The whole packet, header included (x/crypto's `Signature.Serialize`).
    pub fn serialize(&self) -> Vec<u8> {
        let mut body = vec![4, self.sig_type, self.pubkey_algo, self.hash_algo];
        body.extend_from_slice(&u16::try_from(self.hashed.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(&self.hashed);
        body.extend_from_slice(&u16::try_from(self.unhashed.len()).unwrap_or(0).to_be_bytes());
        body.extend_from_slice(&self.unhashed);
        body.extend_from_slice(&self.hash_prefix);
        body.extend_from_slice(&self.signature_bits.to_be_bytes());
        body.extend_from_slice(&self.signature);
        let mut out = Vec::with_capacity(body.len() + 3);
        write_header(&mut out, TAG_SIGNATURE, body.len());
        out.extend_from_slice(&body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lengths() {
        for (len, want) in [
            (10usize, vec![0xC2, 10]),
            (540, vec![0xC2, 0xC1, 0x5C]),
            (9000, vec![0xC2, 0xFF, 0, 0, 0x23, 0x28]),
        ] {
            let mut out = Vec::new();
            write_header(&mut out, 2, len);
            assert_eq!(out, want, "{len}");
            let mut packet = out.clone();
            packet.extend(std::iter::repeat_n(0, len));
            let (tag, body) = read_single_packet(&packet, "x").unwrap();
            assert_eq!((tag, body.len()), (2, len));
        }
    }

    #[test]
    fn packet_framing_errors() {
        assert_eq!(
            read_single_packet(&[0x42, 0], "signature").unwrap_err().0,
            "cannot decode signature: tag byte does not have MSB set"
        );
        assert_eq!(
            read_single_packet(&[0xC2, 1, 0, 0], "signature").unwrap_err().0,
            "signature has spurious trailing data"
        );
        assert_eq!(
            read_single_packet(&[0xC2, 3, 0], "signature").unwrap_err().0,
            "cannot decode signature: unexpected EOF"
        );
        // old format, one length byte
        assert_eq!(read_single_packet(&[0x88, 1, 7], "signature").unwrap(), (2, &[7u8][..]));
    }

    #[test]
    fn v1_wrapping() {
        let data = vec![0xAB; 100];
        let text = encode_v1(&data);
        assert!(text.lines().all(|l| l.len() <= 76));
        assert!(text.starts_with("Aaur"));
        assert_eq!(decode_v1(text.as_bytes(), "x").unwrap(), data);
        assert_eq!(
            decode_v1(b"Ag==", "signature").unwrap_err().0,
            "unsupported signature format version: 2"
        );
        assert_eq!(decode_v1(b"", "signature").unwrap_err().0, "cannot decode signature: no data");
        assert!(decode_v1(b"A*==", "signature")
            .unwrap_err()
            .0
            .starts_with("cannot decode signature: "));
    }
}
