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
