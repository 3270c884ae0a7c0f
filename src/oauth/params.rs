//! Request parameters of the OAuth endpoints (RFC 6749 §3.1, §3.2): each may appear at most
//! once, an empty value counts as absent, and no name or value may hold a control character.
//! No OAuth parameter has a use for one (RFC 6749 Appendix A limits them to visible
//! characters and spaces), and a NUL that reached an event would be refused by Postgres'
//! text columns when the views read it.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` data (a body or a query string).
    pub fn parse(encoded: &[u8]) -> Result<Params, ParamsError> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if name.chars().chain(value.chars()).any(char::is_control) {
                return Err(ParamsError::ControlCharacter(printable(&name)));
            }
            if value.is_empty() {
                continue;
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(ParamsError::Repeated(name.into_owned()));
            }
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Re-encodes the parameters (for carrying an authorization request through sign-in).
    pub fn encode(&self) -> String {
        let mut names: Vec<&String> = self.0.keys().collect();
        names.sort();
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for name in names {
            serializer.append_pair(name, &self.0[name]);
        }
        serializer.finish()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Why a form or query string was refused; the message names the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("parameter `{0}` appears more than once")]
    Repeated(String),
    #[error("parameter `{0}` contains a control character")]
    ControlCharacter(String),
}

/// A parameter name as it can be shown back: its control characters escaped.
fn printable(name: &str) -> String {
    name.chars().flat_map(char::escape_debug).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused_and_empty_ones_are_absent() {
        assert_eq!(
            Params::parse(b"a=1&a=2").unwrap_err(),
            ParamsError::Repeated("a".into())
        );
        let params = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y"));
    }

    #[test]
    fn a_control_character_in_a_name_or_value_is_refused() {
        assert_eq!(
            Params::parse(b"client_id=a%00b").unwrap_err(),
            ParamsError::ControlCharacter("client_id".into())
        );
        assert!(Params::parse(b"a%0A=1").is_err());
        assert!(Params::parse(b"state=%09").is_err());
    }
}
