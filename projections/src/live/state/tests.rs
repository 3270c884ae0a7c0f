//! The ordering rules: the same events, delivered by a command and again by the follower
//! in another order, leave the same state.
use super::*;
use authledger_domain::grant::RevocationReason;
use authledger_domain::oauth::{GrantType, Scopes};
use authledger_domain::user::Username;

fn hex(key: &TokenKey) -> String {
    hex::encode(key)
}

fn hash(n: u8) -> SecretHash {
    SecretHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
}

fn issued(access: u8) -> GrantEvent {
    issued_with_refresh(access, None)
}

/// `refresh`: a refresh token came with the access token, so the grant may issue again.
fn issued_with_refresh(access: u8, refresh: Option<u8>) -> GrantEvent {
    GrantEvent::TokensIssued {
        grant_type: GrantType::AuthorizationCode,
        client_id: "app".into(),
        user: Some(Username::parse("alice").unwrap()),
        scopes: Scopes::parse("openid").unwrap(),
        auth_time: None,
        access_token_hash: hash(access),
        access_expires_at: Utc::now() + chrono::Duration::hours(1),
        refresh_token_hash: refresh.map(hash),
        refresh_expires_at: refresh.map(|_| Utc::now() + chrono::Duration::days(1)),
        audience: vec![],
        exchange: None,
    }
}

fn state_after(events: &[GrantEvent]) -> LiveState {
    let mut state = LiveState {
        complete: true,
        ..Default::default()
    };
    for event in events {
        state
            .apply_grant("g1", event, Utc::now(), None, 10)
            .unwrap_or_else(|_| panic!("owner needed for {event:?}"));
    }
    state
}

fn token_revoked(state: &LiveState, n: u8) -> bool {
    let token = &state.access_tokens[&token_key(hash(n).as_hex()).unwrap()];
    token.revoked_at.is_some()
}

#[test]
fn token_keys_round_trip_hex() {
    let hex_hash = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    let key = token_key(hex_hash).unwrap();
    assert_eq!(hex(&key), hex_hash);
    assert_eq!(token_key("zz"), None);
    assert_eq!(token_key(&"g".repeat(64)), None);
}

#[test]
fn a_revocation_seen_before_its_issuance_still_ends_the_token() {
    let revoked = GrantEvent::TokenRevoked {
        token_hash: hash(1),
    };
    let in_order = state_after(&[issued(1), revoked.clone()]);
    let reversed = state_after(&[revoked, issued(1)]);
    assert!(token_revoked(&in_order, 1));
    assert!(token_revoked(&reversed, 1));
}

#[test]
fn a_revoked_grant_stays_revoked_whatever_arrives_after() {
    let revoked = GrantEvent::GrantRevoked {
        reason: RevocationReason::Admin,
    };
    let state = state_after(&[revoked.clone(), issued(1), issued(1), revoked]);
    assert!(state.grants["g1"].revoked_at.is_some());
    assert!(
        !token_revoked(&state, 1),
        "the token itself was not, its grant was"
    );
}

#[test]
fn a_grant_of_one_token_has_an_entry_only_once_revoked() {
    let alone = state_after(&[issued(1)]);
    assert_eq!(alone.grants.len(), 0, "found through its token");
    assert!(!alone.grant_revoked("g1"));
    let refreshable = state_after(&[issued_with_refresh(1, Some(9))]);
    assert!(
        refreshable.grants.contains_key("g1"),
        "its refreshes need the owner"
    );

    let revoked = GrantEvent::GrantRevoked {
        reason: RevocationReason::Admin,
    };
    for events in [[issued(1), revoked.clone()], [revoked.clone(), issued(1)]] {
        let state = state_after(&events);
        let token = &state.access_tokens[&token_key(hash(1).as_hex()).unwrap()];
        let mut digits = [0u8; 32];
        let grant_id = token.grant_id.as_str(&mut digits);
        assert!(state.grant_revoked(grant_id), "{events:?}");
    }
}

#[test]
fn a_repeated_issuance_changes_nothing() {
    let state = state_after(&[
        issued(1),
        GrantEvent::TokenRevoked {
            token_hash: hash(1),
        },
        issued(1),
    ]);
    assert!(
        token_revoked(&state, 1),
        "a re-delivered issuance does not resurrect"
    );
    assert_eq!(state.access_tokens.len(), 1);
}

#[test]
fn a_refresh_of_a_grant_not_held_asks_for_its_owner() {
    let refreshed = GrantEvent::TokensRefreshed {
        previous_refresh_token_hash: hash(9),
        scopes: Scopes::parse("openid").unwrap(),
        access_token_hash: hash(2),
        access_expires_at: Utc::now() + chrono::Duration::hours(1),
        refresh_token_hash: hash(3),
        refresh_expires_at: Utc::now() + chrono::Duration::days(1),
        audience: vec![],
    };
    let mut state = LiveState::default();
    assert!(state
        .apply_grant("g1", &refreshed, Utc::now(), None, 10)
        .is_err());
    let held = state_after(&[issued_with_refresh(1, Some(9)), refreshed]);
    assert_eq!(
        held.access_tokens.len(),
        2,
        "the grant's owner came with its issuance"
    );
}

#[test]
fn past_capacity_tokens_are_left_out_and_the_index_says_so() {
    let mut state = LiveState {
        complete: true,
        ..Default::default()
    };
    for n in 1..=3 {
        let _ = state.apply_grant("g1", &issued(n), Utc::now(), None, 2);
    }
    assert_eq!(state.access_tokens.len(), 2);
    assert!(!state.complete);
}

#[test]
fn versioned_aggregates_take_only_the_next_event() {
    use authledger_domain::settings::{Setting, SettingsEvent};
    let mut settings = Versioned {
        sequence: 2,
        value: Settings::default(),
    };
    let change = || {
        Ok(SettingsEvent::SettingsChanged {
            setting: Setting::AccessTokenTtl(60),
        })
    };
    assert!(
        apply_versioned(Some(&mut settings), 2, change).unwrap(),
        "seen: skipped"
    );
    assert_eq!(settings.value.values().access_token_ttl, 3600);
    assert!(
        !apply_versioned(Some(&mut settings), 4, change).unwrap(),
        "a gap"
    );
    assert!(apply_versioned(Some(&mut settings), 3, change).unwrap());
    assert_eq!(
        (settings.sequence, settings.value.values().access_token_ttl),
        (3, 60)
    );
}

#[test]
fn a_tokens_grant_id_reads_back_as_it_was_given() {
    let made_here = "019ad0a8c0f27c41b9e4a6f0d2c83e51";
    let others = [
        "019AD0A8C0F27C41B9E4A6F0D2C83E51", // upper case: would not read back the same inline
        "019ad0a8-c0f2-7c41-b9e4-a6f0d2c83e51",
        "g1",
        "019ad0a8c0f27c41b9e4a6f0d2c83e5z",
        "",
    ];
    let mut digits = [0u8; 32];
    let inline = TokenGrant::of(made_here);
    assert!(matches!(inline, TokenGrant::Uuid(_)), "held in the token");
    assert_eq!(inline.as_str(&mut digits), made_here);
    for id in others {
        let held = TokenGrant::of(id);
        assert!(matches!(held, TokenGrant::Shared(_)), "{id}");
        assert_eq!(held.as_str(&mut digits), id);
    }
}

#[test]
fn a_client_credentials_token_held_without_a_grant_entry_reports_its_grant() {
    let grant = "019ad0a8c0f27c41b9e4a6f0d2c83e51";
    let mut state = LiveState {
        complete: true,
        ..Default::default()
    };
    let event = GrantEvent::TokensIssued {
        grant_type: GrantType::ClientCredentials,
        client_id: "service".into(),
        user: None,
        scopes: Scopes::parse("read").unwrap(),
        auth_time: None,
        access_token_hash: hash(1),
        access_expires_at: Utc::now() + chrono::Duration::hours(1),
        refresh_token_hash: None,
        refresh_expires_at: None,
        audience: vec![],
        exchange: None,
    };
    state
        .apply_grant(grant, &event, Utc::now(), None, 10)
        .unwrap_or_else(|_| panic!("owner needed"));
    assert!(
        !state.grants.contains_key(grant),
        "no entry for a grant of one token"
    );
    let token = &state.access_tokens[&token_key(hash(1).as_hex()).unwrap()];
    assert!(
        matches!(token.grant_id, TokenGrant::Uuid(_)),
        "its id held inline"
    );
    let mut digits = [0u8; 32];
    assert_eq!(token.grant_id.as_str(&mut digits), grant);
}

#[test]
fn a_live_token_fits_the_allocators_96_byte_class() {
    // jemalloc's size classes around it are 80, 96 and 112 bytes: the inline
    // grant id added 8 bytes to the token (88 to 96) and took away a 48-byte allocation.
    assert!(std::mem::size_of::<LiveToken>() <= 96);
}
