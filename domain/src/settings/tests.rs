use cqrs_es::test::TestFramework;

use super::*;
use crate::testing::services;

#[test]
fn a_change_is_recorded_with_its_key_and_value() {
    TestFramework::<Settings>::with(services())
        .given_no_previous_events()
        .when(SettingsCommand::Change(Setting::ConsentMode(
            ConsentMode::Auto,
        )))
        .then_expect_events(vec![SettingsEvent::SettingsChanged {
            setting: Setting::ConsentMode(ConsentMode::Auto),
        }]);
}

#[test]
fn setting_the_value_in_force_records_nothing() {
    TestFramework::<Settings>::with(services())
        .given_no_previous_events()
        .when(SettingsCommand::Change(Setting::CodeTtl(60)))
        .then_expect_events(vec![]);
}

#[test]
fn values_are_parsed_and_bounded() {
    assert_eq!(Setting::parse("code_ttl", "30"), Ok(Setting::CodeTtl(30)));
    assert!(
        Setting::parse("code_ttl", "601").is_err(),
        "RFC 6749: ten minutes at most"
    );
    assert!(Setting::parse("consent_mode", "sometimes").is_err());
    assert!(matches!(
        Setting::parse("colour", "blue"),
        Err(SettingsError::UnknownKey(_))
    ));
    assert_eq!(
        Setting::parse("allow_implicit", "true"),
        Ok(Setting::AllowImplicit(true))
    );
}

#[test]
fn defaults_are_frappe_compatible_and_safe() {
    let values = SettingsValues::default();
    assert_eq!(values.access_token_ttl, 3600);
    assert_eq!(values.code_ttl, 60);
    assert!(!values.allow_implicit);
    assert_eq!(values.consent_mode, ConsentMode::Force);
}

#[test]
fn the_initial_access_token_is_kept_as_a_hash_and_never_shown() {
    let token = "a-long-random-initial-access-token-0123456789";
    let setting = Setting::parse("registration_initial_access_token", token).unwrap();
    assert!(!format!("{setting:?} {setting}").contains(token));
    assert!(!serde_json::to_string(&setting).unwrap().contains(token));
    assert!(Setting::parse("registration_initial_access_token", "short").is_err());
    assert_eq!(
        Setting::parse("registration_initial_access_token", "none"),
        Ok(Setting::RegistrationInitialAccessToken(None))
    );
}

#[test]
fn public_client_origins_are_origins_or_a_wildcard() {
    assert_eq!(
        Setting::parse(
            "allowed_public_client_origins",
            "https://a.example http://localhost:3000"
        ),
        Ok(Setting::AllowedPublicClientOrigins(vec![
            "https://a.example".into(),
            "http://localhost:3000".into()
        ]))
    );
    assert!(Setting::parse("allowed_public_client_origins", "*").is_ok());
    assert!(Setting::parse("allowed_public_client_origins", "https://a.example/path").is_err());
    assert!(Setting::parse("allowed_public_client_origins", "a.example").is_err());
}

/// The name `settings set` takes, the event's `key` and the list of known keys are one list.
#[test]
fn a_settings_key_is_the_name_its_events_carry() {
    for (key, value) in [
        ("consent_mode", "auto"),
        ("show_openid_configuration", "false"),
        ("registration_rate_limit", "5"),
        ("login_lockout_seconds", "60"),
    ] {
        let setting = Setting::parse(key, value).unwrap();
        assert_eq!(setting.key(), key);
        let event = serde_json::to_value(&setting).unwrap();
        assert_eq!(event["key"], key);
    }
    let unknown = Setting::parse("nope", "1").unwrap_err().to_string();
    assert!(
        unknown.contains("login_max_failures") && unknown.contains("consent_mode"),
        "{unknown}"
    );
}

#[test]
fn every_setting_is_listed_once_and_its_value_parses_back() {
    let all = SettingsValues::default().all();
    assert_eq!(all.len(), <Setting as strum::VariantNames>::VARIANTS.len());
    for setting in all {
        if matches!(setting, Setting::RegistrationInitialAccessToken(_)) {
            continue; // shown as `(set)` or `none`, never the token
        }
        let again = Setting::parse(setting.key(), &setting.value()).unwrap();
        assert_eq!(again, setting, "{}", setting.key());
    }
}
