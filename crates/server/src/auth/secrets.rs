//! Making, hashing and comparing secrets: API keys, cookie values, CSRF and sign-in tokens.
//!
//! An API key reads `rswe_<id>_<secret>`: `id` (8 lowercase letters and digits) names the
//! stored row, `secret` (32 letters and digits, about 190 bits) is what makes it a key.
//! The store keeps only the SHA-256 of the whole key: the secret is random and long, so a
//! fast hash is enough.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How every API key begins.
pub const KEY_PREFIX: &str = "rswe_";
/// Length of a key's id.
pub const KEY_ID_LEN: usize = 8;
/// Length of a key's secret part.
pub const KEY_SECRET_LEN: usize = 32;

/// Letters and digits, both cases.
pub(crate) const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Lowercase letters and digits.
const LOWER_ALNUM: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `len` characters drawn uniformly from `alphabet` (at most 256 characters) with the
/// operating system's random number generator.
pub fn random_string(len: usize, alphabet: &[u8]) -> Result<String, getrandom::Error> {
    let size = alphabet.len().clamp(1, 256);
    // Bytes at or above `limit` would make the first characters likelier: skip them.
    let limit = 256 - 256 % size;
    let mut out = String::with_capacity(len);
    let mut buffer = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buffer)?;
        for byte in buffer.iter().map(|&b| usize::from(b)).filter(|&b| b < limit) {
            if out.len() == len {
                break;
            }
            if let Some(&c) = alphabet.get(byte % size) {
                out.push(char::from(c));
            }
        }
    }
    Ok(out)
}

/// A random token of letters and digits: cookie values, CSRF and sign-in tokens.
pub fn random_token(len: usize) -> Result<String, getrandom::Error> {
    random_string(len, BASE62)
}

/// A freshly made API key. `key` is to be shown once; only `hash` is stored.
pub struct GeneratedKey {
    pub id: String,
    pub key: String,
    pub hash: [u8; 32],
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Makes a new API key.
pub fn generate_api_key() -> Result<GeneratedKey, getrandom::Error> {
    let id = random_string(KEY_ID_LEN, LOWER_ALNUM)?;
    let secret = random_string(KEY_SECRET_LEN, BASE62)?;
    let key = format!("{KEY_PREFIX}{id}_{secret}");
    let hash = hash_secret(&key);
    Ok(GeneratedKey { id, key, hash })
}

/// The id of something shaped like an API key, `None` when it is not shaped like one.
/// Says nothing about whether the key is valid.
pub fn key_id(key: &str) -> Option<&str> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let id_ok = id.len() == KEY_ID_LEN && id.bytes().all(|b| LOWER_ALNUM.contains(&b));
    let secret_ok = secret.len() == KEY_SECRET_LEN && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(id)
}

/// SHA-256 of a secret, as stored.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_are_all_different() {
        let first = generate_api_key().unwrap();
        let second = generate_api_key().unwrap();
        assert_ne!(first.key, second.key);
        assert_ne!(first.id, second.id);
        assert_eq!(first.key.len(), KEY_PREFIX.len() + KEY_ID_LEN + 1 + KEY_SECRET_LEN);
        assert!(first.key.starts_with(&format!("rswe_{}_", first.id)));
        assert_eq!(key_id(&first.key), Some(first.id.as_str()));
        assert_eq!(first.hash, hash_secret(&first.key));
        assert!(!format!("{first:?}").contains(&first.key), "Debug must not show the key");
    }

    #[test]
    fn only_well_formed_keys_have_an_id() {
        let secret = "A".repeat(KEY_SECRET_LEN);
        assert_eq!(key_id(&format!("rswe_abcd1234_{secret}")), Some("abcd1234"));
        for bad in [
            String::new(),
            "rswe_".into(),
            format!("rswe_ABCD1234_{secret}"),
            format!("rswe_abcd123_{secret}"),
            format!("rswe_abcd1234_{secret}x"),
            format!("rswe_abcd1234_{}", "A".repeat(KEY_SECRET_LEN - 1)),
            format!("rswe_abcd1234_{}-", "A".repeat(KEY_SECRET_LEN - 1)),
            format!("rswe_abcd1234{secret}"),
            format!("xswe_abcd1234_{secret}"),
            format!("rswe_abcd1234_{secret}_"),
        ] {
            assert_eq!(key_id(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_sha256() {
        // SHA-256("abc"), from FIPS 180-2.
        let expected = [
            0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03,
            0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
        ];
        assert_eq!(hash_secret("abc"), expected);
        assert_ne!(hash_secret("abc"), hash_secret("abd"));
    }

    #[test]
    fn secrets_compare_by_content_and_length() {
        assert!(secrets_equal(b"same", b"same"));
        assert!(!secrets_equal(b"same", b"sane"));
        assert!(!secrets_equal(b"same", b"same-but-longer"));
        assert!(!secrets_equal(b"", b"x"));
        assert!(secrets_equal(b"", b""));
    }

    #[test]
    fn random_strings_use_only_their_alphabet() {
        let text = random_string(2000, b"ab").unwrap();
        assert_eq!(text.len(), 2000);
        assert!(text.bytes().all(|b| b == b'a' || b == b'b'));
        assert!(text.contains('a') && text.contains('b'));
        let token = random_token(43).unwrap();
        assert_eq!(token.len(), 43);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(token, random_token(43).unwrap());
        assert_eq!(random_string(0, BASE62).unwrap(), "");
    }
}
