use super::*;
use crate::storage::InMemory;

fn shamir(physical: &Arc<InMemory>) -> Seal {
    Seal::new(physical.clone(), SealKind::Shamir, Clock::manual())
}

fn static_seal(
    physical: &Arc<InMemory>,
    current: &StaticKey,
    previous: Option<&StaticKey>,
) -> Seal {
    Seal::new(
        physical.clone(),
        SealKind::Static {
            current: current.clone(),
            previous: previous.cloned(),
        },
        Clock::manual(),
    )
}

fn hex_keys(outcome: &InitOutcome) -> Vec<String> {
    outcome
        .keys
        .iter()
        .map(|k| hex::encode(k.as_slice()))
        .collect()
}

fn params(n: i64, t: i64) -> InitParams {
    InitParams {
        secret_shares: n,
        secret_threshold: t,
    }
}

#[tokio::test]
async fn shamir_init_unseal_with_threshold_keys_and_reset() {
    let physical = Arc::new(InMemory::new());
    let seal = shamir(&physical);
    assert!(!seal.status().await.unwrap().initialized);
    assert_eq!(
        seal.unseal(Some("00"), false)
            .await
            .unwrap_err()
            .to_string(),
        "Vault is not initialized"
    );
    let outcome = seal.init(&params(5, 3)).await.unwrap();
    let keys = hex_keys(&outcome);
    assert_eq!(keys.len(), 5);
    seal.storage().put("core/x", b"value").await.unwrap();
    seal.seal().unwrap();
    let status = seal.status().await.unwrap();
    assert!(status.initialized && status.sealed);
    assert_eq!(
        (status.threshold, status.shares, status.progress),
        (3, 5, 0)
    );
    assert_eq!(
        seal.storage().get("core/x").await.unwrap_err(),
        Error::Unavailable(SEALED.into())
    );

    // A restarted node (a new Seal on the same store) starts sealed.
    let node = shamir(&physical);
    let s = node.unseal(Some(&keys[4]), false).await.unwrap();
    assert_eq!((s.progress, s.sealed), (1, true));
    let nonce = s.nonce.clone();
    assert!(!nonce.is_empty());
    // The same key again counts once.
    assert_eq!(
        node.unseal(Some(&keys[4]), false).await.unwrap().progress,
        1
    );
    // Reset forgets it.
    let s = node.unseal(None, true).await.unwrap();
    assert_eq!((s.progress, s.nonce.as_str()), (0, ""));
    // base64 works as well as hex.
    let b64 = BASE64.encode(hex::decode(&keys[0]).unwrap());
    node.unseal(Some(&b64), false).await.unwrap();
    node.unseal(Some(&keys[2]), false).await.unwrap();
    let s = node.unseal(Some(&keys[3]), false).await.unwrap();
    assert!(!s.sealed, "{s:?}");
    assert_eq!(s.progress, 0);
    assert_eq!(
        node.storage().get("core/x").await.unwrap().as_deref(),
        Some(&b"value"[..])
    );
    assert_eq!(
        node.unseal(None, true).await.unwrap_err().to_string(),
        "vault is unsealed"
    );
    // Unsealed: more keys are answered with the status.
    assert!(!node.unseal(Some(&keys[1]), false).await.unwrap().sealed);
    assert!(seal
        .init(&params(1, 1))
        .await
        .unwrap_err()
        .to_string()
        .contains("already initialized"));
}

#[tokio::test]
async fn wrong_keys_never_unseal_and_progress_starts_over() {
    let physical = Arc::new(InMemory::new());
    let seal = shamir(&physical);
    let keys = hex_keys(&seal.init(&params(3, 2)).await.unwrap());
    seal.seal().unwrap();
    let other = hex_keys(
        &shamir(&Arc::new(InMemory::new()))
            .init(&params(3, 2))
            .await
            .unwrap(),
    );

    // A share from another initialization with another share number: combines into some
    // key that does not open the keyring.
    let wrong_share_number = other
        .iter()
        .find(|k| k[..2] != keys[0][..2])
        .unwrap()
        .clone();
    seal.unseal(Some(&keys[0]), false).await.unwrap();
    let err = seal
        .unseal(Some(&wrong_share_number), false)
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.to_string()
            .contains("do not open this storage's keyring"),
        "{err}"
    );
    let s = seal.status().await.unwrap();
    assert!(s.sealed);
    assert_eq!(s.progress, 0, "a failed attempt starts over");

    // The same share number from another initialization.
    let same_number = other.iter().find(|k| k[..2] == keys[0][..2]).unwrap();
    seal.unseal(Some(same_number), false).await.unwrap();
    let err = seal.unseal(Some(&keys[0]), false).await.unwrap_err();
    assert!(err.to_string().contains("same share number"), "{err}");
    assert_eq!(seal.status().await.unwrap().progress, 0);

    // A flipped byte in a real share.
    let mut bad = hex::decode(&keys[1]).unwrap();
    bad[5] ^= 0x40;
    seal.unseal(Some(&keys[0]), false).await.unwrap();
    assert!(seal.unseal(Some(&hex::encode(bad)), false).await.is_err());
    // A truncated one.
    seal.unseal(Some(&keys[0]), false).await.unwrap();
    let err = seal.unseal(Some(&keys[1][..60]), false).await.unwrap_err();
    assert!(err.to_string().contains("same length"), "{err}");
    assert!(seal.is_sealed());
    // And then the right ones still work.
    seal.unseal(Some(&keys[2]), false).await.unwrap();
    assert!(!seal.unseal(Some(&keys[1]), false).await.unwrap().sealed);
}

#[tokio::test]
async fn static_seal_initializes_unseals_itself_and_rotates_its_key() {
    let physical = Arc::new(InMemory::new());
    let k1 = StaticKey::new("k1", random_key());
    let seal = static_seal(&physical, &k1, None);
    assert!(!seal.auto_unseal().await.unwrap(), "nothing to unseal yet");
    let err = seal.init(&params(3, 2)).await.unwrap_err().to_string();
    assert!(err.contains("not applicable to seal type static"), "{err}");
    assert!(seal.init(&params(0, 0)).await.unwrap().keys.is_empty());
    seal.storage().put("core/x", b"1").await.unwrap();

    let node = static_seal(&physical, &k1, None);
    assert!(node.is_sealed());
    assert!(node.auto_unseal().await.unwrap());
    assert_eq!(
        node.storage().get("core/x").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    // Unsealed, a key is answered with the status; sealed by hand, a static seal waits
    // for a restart.
    assert!(
        !node
            .unseal(Some(&"ab".repeat(32)), false)
            .await
            .unwrap()
            .sealed
    );
    node.seal().unwrap();
    let err = node
        .unseal(Some(&"ab".repeat(32)), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("restart it"), "{err}");
    assert!(!node.may_auto_unseal());

    // Wrong key: a clear error, still sealed.
    let stranger = StaticKey::new("k1", random_key());
    let wrong = static_seal(&physical, &stranger, None);
    let err = wrong.auto_unseal().await.unwrap_err();
    assert_eq!(err.status(), 503);
    assert!(
        err.to_string()
            .contains("does not open this storage's keyring"),
        "{err}"
    );
    assert!(wrong.is_sealed());

    // Rotation: current k2, previous k1 -> unseals and seals the keyring anew under k2.
    let k2 = StaticKey::new("k2", random_key());
    let rotated = static_seal(&physical, &k2, Some(&k1));
    assert!(rotated.auto_unseal().await.unwrap());
    assert_eq!(
        rotated.storage().get("core/x").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert!(static_seal(&physical, &k2, None)
        .auto_unseal()
        .await
        .unwrap());
    assert!(static_seal(&physical, &k1, None)
        .auto_unseal()
        .await
        .is_err());

    // A Shamir-configured server on a static store says what is wrong.
    let err = shamir(&physical)
        .unseal(Some(&"ab".repeat(32)), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("with a static key"), "{err}");
    // Sealing by hand stops auto-unseal until restart.
    rotated.seal().unwrap();
    assert!(!rotated.may_auto_unseal());
}

#[tokio::test]
async fn a_store_written_in_the_clear_is_encrypted_in_place_at_init() {
    let physical = Arc::new(InMemory::new());
    physical.put("core/init", b"{\"time\":1}").await.unwrap();
    physical
        .put("core/token/keyring", b"{\"hmac_key\":\"abc\"}")
        .await
        .unwrap();
    physical
        .put("auth/u1/role/demo", b"{\"r\":1}")
        .await
        .unwrap();
    let key = StaticKey::new("k", random_key());
    let seal = static_seal(&physical, &key, None);
    assert!(seal.holds_plain_store().await.unwrap());
    assert_eq!(seal.init(&InitParams::default()).await.unwrap().migrated, 3);
    assert!(!seal.holds_plain_store().await.unwrap());
    let raw = physical.get("core/token/keyring").await.unwrap().unwrap();
    assert!(!raw.windows(8).any(|w| w == b"hmac_key"));
    assert_eq!(
        seal.storage()
            .get("core/token/keyring")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"{\"hmac_key\":\"abc\"}"[..])
    );
    assert_eq!(seal.storage().list("").await.unwrap(), ["auth/", "core/"]);
}

#[tokio::test]
async fn two_nodes_initializing_at_once_make_one_seal() {
    let physical = Arc::new(InMemory::new());
    let (a, b) = (shamir(&physical), shamir(&physical));
    let p = params(1, 1);
    let (x, y) = tokio::join!(a.init(&p), b.init(&p));
    assert!(x.is_ok() != y.is_ok(), "exactly one wins");
}

#[tokio::test]
async fn a_rotated_keyring_is_picked_up_by_another_node() {
    let physical = Arc::new(InMemory::new());
    let key = StaticKey::new("k", random_key());
    let a = static_seal(&physical, &key, None);
    a.init(&InitParams::default()).await.unwrap();
    let b = static_seal(&physical, &key, None);
    b.auto_unseal().await.unwrap();
    a.storage().put("old", b"1").await.unwrap();
    assert_eq!(a.rotate_keyring().await.unwrap(), 2);
    a.storage().put("new", b"2").await.unwrap();
    assert_eq!(
        physical.get("new").await.unwrap().unwrap()[1..5],
        2u32.to_be_bytes()
    );
    assert_eq!(
        b.storage().get("new").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert_eq!(
        b.storage().get("old").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    b.storage().put("again", b"3").await.unwrap();
    assert_eq!(
        physical.get("again").await.unwrap().unwrap()[1..5],
        2u32.to_be_bytes()
    );
}

#[test]
fn static_keys_parse_raw_hex_and_base64() {
    let raw = [9u8; 32];
    for material in [
        raw.to_vec(),
        hex::encode(raw).into_bytes(),
        format!("{}\n", hex::encode(raw)).into_bytes(),
        BASE64.encode(raw).into_bytes(),
    ] {
        assert_eq!(*StaticKey::parse("k", &material).unwrap().key, raw);
    }
    for bad in [&b""[..], &[1u8; 31], &[1u8; 33], b"not a key at all"] {
        let err = StaticKey::parse("k", bad).unwrap_err();
        assert!(err.contains("32-byte key"), "{err}");
    }
}
