use cqrs_es::test::TestFramework;

use super::connection::*;
use super::*;
use crate::testing::services;

fn hash(n: u8) -> SecretHash {
    SecretHash::from_hex(&format!("{n:02x}").repeat(32)).unwrap()
}

fn config() -> ConnectedAppConfig {
    ConnectedAppConfig {
        name: "Drive".into(),
        openid_configuration: None,
        endpoints: ProviderEndpoints {
            authorization: WebUrl::parse("https://idp.example/authorize").unwrap(),
            token: WebUrl::parse("https://idp.example/token").unwrap(),
            revocation: None,
            userinfo: None,
            introspection: None,
            issuer: Some("https://idp.example".into()),
            jwks: None,
        },
        client_id: "authledger".into(),
        scopes: Scopes::parse("openid files").unwrap(),
        extra_params: BTreeMap::new(),
    }
}

fn created() -> ConnectedAppEvent {
    ConnectedAppEvent::ConnectedAppCreated {
        id: AppId::slug("Drive").unwrap(),
        config: config(),
        client_secret: hash(1),
    }
}

#[test]
fn an_id_is_the_slug_of_the_name() {
    assert_eq!(
        AppId::slug("Google Drive (work)").unwrap().as_str(),
        "google-drive-work"
    );
    assert_eq!(AppId::slug("  Frappe  ").unwrap().as_str(), "frappe");
    assert_eq!(AppId::slug("--"), Err(AppIdRejected::Empty));
    assert_eq!(AppId::parse("Drive"), Err(AppIdRejected::Shape));
    assert_eq!(AppId::parse("a:b"), Err(AppIdRejected::Shape));
    assert!(AppId::slug(&"x".repeat(65)).is_err());
}

#[test]
fn an_app_is_created_once_and_its_id_is_never_reused() {
    TestFramework::<ConnectedApp>::with(services())
        .given_no_previous_events()
        .when(ConnectedAppCommand::Create {
            id: AppId::slug("Drive").unwrap(),
            config: config(),
            client_secret: hash(1),
        })
        .then_expect_events(vec![created()]);
    TestFramework::<ConnectedApp>::with(services())
        .given(vec![created(), ConnectedAppEvent::ConnectedAppDeleted])
        .when(ConnectedAppCommand::Create {
            id: AppId::slug("Drive").unwrap(),
            config: config(),
            client_secret: hash(1),
        })
        .then_expect_error(ConnectedAppError::Exists);
}

#[test]
fn an_extra_parameter_may_not_replace_one_of_the_flow() {
    let mut config = config();
    config.extra_params.insert("state".into(), "fixed".into());
    TestFramework::<ConnectedApp>::with(services())
        .given(vec![created()])
        .when(ConnectedAppCommand::Update { config })
        .then_expect_error(ConnectedAppError::Config(ConfigRejected::ReservedParam(
            "state".into(),
        )));
}

#[test]
fn the_same_secret_again_records_nothing() {
    TestFramework::<ConnectedApp>::with(services())
        .given(vec![created()])
        .when(ConnectedAppCommand::ChangeSecret {
            client_secret: hash(1),
        })
        .then_expect_events(vec![]);
}

fn tokens(access: u8, refresh: Option<u8>) -> ProviderTokens {
    ProviderTokens {
        scopes: Scopes::parse("files").unwrap(),
        access_expires_at: None,
        access_token_hash: hash(access),
        refresh_token_hash: refresh.map(hash),
    }
}

fn obtained() -> ConnectionEvent {
    ConnectionEvent::TokensObtained {
        app: AppId::slug("Drive").unwrap(),
        user: Some(crate::user::Username::parse("alice").unwrap()),
        tokens: tokens(2, Some(3)),
        subject: Some("alice@idp".into()),
    }
}

#[test]
fn a_refresh_that_did_not_rotate_keeps_the_refresh_token() {
    TestFramework::<AppConnection>::with(services())
        .given(vec![obtained()])
        .when(ConnectionCommand::Refresh {
            tokens: tokens(4, None),
        })
        .then_expect_events(vec![ConnectionEvent::TokensRefreshed {
            tokens: tokens(4, Some(3)),
        }]);
}

#[test]
fn a_lost_connection_refreshes_no_more_until_connected_again() {
    let lost = ConnectionEvent::ConnectionLost {
        reason: "invalid_grant".into(),
    };
    TestFramework::<AppConnection>::with(services())
        .given(vec![obtained(), lost.clone()])
        .when(ConnectionCommand::Refresh {
            tokens: tokens(4, None),
        })
        .then_expect_error(ConnectionError::NotConnected);
    TestFramework::<AppConnection>::with(services())
        .given(vec![obtained(), lost])
        .when(ConnectionCommand::Disconnect {
            revoked_at_provider: false,
        })
        .then_expect_events(vec![ConnectionEvent::Disconnected {
            revoked_at_provider: false,
        }]);
}
