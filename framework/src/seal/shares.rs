//! Unseal keys: the root key split into Shamir shares over GF(256) with the `vsss-rs` crate
//! (constant-time field arithmetic, refuses duplicate and zero share numbers), and the text
//! forms an operator types them in.
//!
//! A share is 33 bytes: its share number (1..=255), then one byte per byte of the 32-byte
//! root key. With one share and a threshold of one there is nothing to split: the unseal key
//! is the root key itself (32 bytes), as in Vault. Source: Vault API `sys/init`,
//! `sys/unseal`; Shamir, "How to share a secret" (1979).

use zeroize::Zeroizing;

use super::barrier::KeyBytes;
use crate::error::{Error, Result};

/// Shortest unseal key accepted (Vault's bound).
pub const MIN_KEY_LEN: usize = 16;
/// Longest unseal key accepted: a share of a 32-byte key.
pub const MAX_KEY_LEN: usize = 33;

/// Checks `sys/init`'s `secret_shares` and `secret_threshold` with Vault's rules and
/// messages. Errors: 400 `invalid seal configuration: ...`.
pub fn check_params(shares: i64, threshold: i64) -> Result<(u8, u8)> {
    let bad = |why: &str| Err(Error::invalid(format!("invalid seal configuration: {why}")));
    if shares < 1 {
        return bad("shares must be at least one");
    }
    if threshold < 1 {
        return bad("threshold must be at least one");
    }
    if shares > 255 {
        return bad("shares must be less than 256");
    }
    if threshold > shares {
        return bad("threshold cannot be larger than shares");
    }
    if shares > 1 && threshold == 1 {
        return bad("threshold must be greater than one for multiple shares");
    }
    Ok((shares as u8, threshold as u8))
}

/// Splits `root` into `shares` unseal keys, any `threshold` of which rebuild it.
pub fn split(root: &KeyBytes, shares: u8, threshold: u8) -> Result<Vec<Zeroizing<Vec<u8>>>> {
    if shares == 1 {
        return Ok(vec![Zeroizing::new(root.to_vec())]);
    }
    let rng = rand_sys::rand_core::UnwrapErr(rand_sys::rngs::SysRng);
    let parts =
        vsss_rs::Gf256::split_bytes(threshold as usize, shares as usize, root.as_ref(), rng)
            .map_err(|e| Error::internal(format!("cannot split the root key: {e}")))?;
    Ok(parts.into_iter().map(Zeroizing::new).collect())
}

/// Rebuilds the root key from `threshold` unseal keys. Errors: a message saying what is
/// wrong with the keys (different lengths, the same share twice, a bad share number).
pub fn combine(
    keys: &[Zeroizing<Vec<u8>>],
    threshold: u8,
) -> std::result::Result<KeyBytes, String> {
    let secret = if threshold == 1 {
        Zeroizing::new(keys.first().map(|k| k.to_vec()).unwrap_or_default())
    } else {
        let parts: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
        let combined = vsss_rs::Gf256::combine_bytes(&parts).map_err(|e| match e {
            vsss_rs::Error::InvalidShare => "the unseal keys are not all the same length".to_string(),
            vsss_rs::Error::SharingDuplicateIdentifier => {
                "two unseal keys carry the same share number: they come from different initializations".to_string()
            }
            vsss_rs::Error::SharingInvalidIdentifier => "an unseal key has share number 0".to_string(),
            other => other.to_string(),
        });
        for mut p in parts {
            zeroize::Zeroize::zeroize(&mut p);
        }
        Zeroizing::new(combined?)
    };
    if secret.len() != 32 {
        return Err(format!(
            "the unseal keys make a {}-byte key, not the 32-byte root key",
            secret.len()
        ));
    }
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&secret);
    Ok(key)
}

/// An unseal key as typed: hex first, then standard base64, as Vault reads `sys/unseal`'s
/// `key`. Errors: 400 with Vault's messages for bad text and bad lengths.
pub fn parse_key_text(text: &str) -> Result<Zeroizing<Vec<u8>>> {
    use base64::Engine;
    let text = text.trim();
    let bytes = hex::decode(text)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|_| Error::invalid("'key' must be a valid hex or base64 string"))?;
    let bytes = Zeroizing::new(bytes);
    if bytes.len() < MIN_KEY_LEN {
        return Err(Error::invalid(format!(
            "invalid key: key is shorter than minimum {MIN_KEY_LEN} bytes"
        )));
    }
    if bytes.len() > MAX_KEY_LEN {
        return Err(Error::invalid(format!(
            "invalid key: key is longer than maximum {MAX_KEY_LEN} bytes"
        )));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::barrier::random_key;

    #[test]
    fn any_threshold_of_shares_rebuilds_the_key_and_fewer_do_not() {
        let root = random_key();
        let keys = split(&root, 5, 3).unwrap();
        assert_eq!(keys.len(), 5);
        assert!(keys.iter().all(|k| k.len() == 33));
        for pick in [[0, 1, 2], [4, 2, 0], [1, 3, 4]] {
            let chosen: Vec<_> = pick.iter().map(|&i| keys[i].clone()).collect();
            assert_eq!(*combine(&chosen, 3).unwrap(), *root);
        }
        // Two shares of a 3-threshold split make some key, never the root key.
        let two = combine(&keys[..2], 2).unwrap();
        assert_ne!(*two, *root);
        let dup = vec![keys[0].clone(), keys[0].clone(), keys[1].clone()];
        assert!(combine(&dup, 3).unwrap_err().contains("same share number"));
        let mut short = keys[2].to_vec();
        short.pop();
        let mixed = vec![keys[0].clone(), keys[1].clone(), Zeroizing::new(short)];
        assert!(combine(&mixed, 3).unwrap_err().contains("same length"));
        let one = split(&root, 1, 1).unwrap();
        assert_eq!(one[0].as_slice(), root.as_slice());
        assert_eq!(*combine(&one, 1).unwrap(), *root);
    }

    #[test]
    fn params_and_key_text_follow_vaults_rules() {
        for (n, t, want) in [
            (0, 0, "shares must be at least one"),
            (3, 0, "threshold must be at least one"),
            (3, 5, "threshold cannot be larger than shares"),
            (300, 2, "shares must be less than 256"),
            (3, 1, "threshold must be greater than one"),
        ] {
            let err = check_params(n, t).unwrap_err().to_string();
            assert!(err.contains(want), "{n}/{t}: {err}");
        }
        assert_eq!(check_params(1, 1).unwrap(), (1, 1));
        assert_eq!(check_params(255, 255).unwrap(), (255, 255));
        let key = [7u8; 33];
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(key);
        assert_eq!(parse_key_text(&hex::encode(key)).unwrap().as_slice(), key);
        assert_eq!(parse_key_text(&b64).unwrap().as_slice(), key);
        for (text, want) in [
            ("zz", "valid hex or base64"),
            ("abcd", "shorter than minimum 16"),
            (&"ab".repeat(40)[..], "longer than maximum 33"),
        ] {
            let err = parse_key_text(text).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
