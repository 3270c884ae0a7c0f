//! Request parameters of the OAuth endpoints (RFC 6749 §3.1, §3.2): each may appear at most
//! once (but `resource`, RFC 8707, and `audience`, RFC 8693), an empty value counts as absent, and no name or value may hold a control character.
//! No OAuth parameter has a use for one (RFC 6749 Appendix A limits them to visible
//! characters and spaces), and a NUL that reached an event would be refused by Postgres'
//! text columns when the views read it.

use std::collections::HashMap;

/// The parameters that may repeat: RFC 8707 §2 lets a request name several resources, and
/// RFC 8693 §2.1 several audiences.
pub const REPEATABLE: [&str; 2] = ["resource", "audience"];

#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, Vec<String>>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` data (a body or a query string).
    pub fn parse(encoded: &[u8]) -> Result<Params, ParamsError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if name.chars().chain(value.chars()).any(char::is_control) {
                return Err(ParamsError::ControlCharacter(printable(&name)));
            }
            if value.is_empty() {
                continue;
            }
            let values = map.entry(name.to_string()).or_default();
            if !values.is_empty() && !REPEATABLE.contains(&name.as_ref()) {
                return Err(ParamsError::Repeated(name.into_owned()));
            }
            values.push(value.into_owned());
        }
        Ok(Params(map))
    }

    /// The value of a parameter (the first, for one that may repeat).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    /// Every value of a parameter that may repeat, in the order sent.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .get(name)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default()
    }

    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).and_then(|v| v.into_iter().next())
    }

    pub fn encode(&self) -> String {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in self.sorted() {
            serializer.append_pair(name, value);
        }
        serializer.finish()
    }

    /// Every (name, value) pair, a repeated parameter once per value.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .flat_map(|(k, values)| values.iter().map(move |v| (k.as_str(), v.as_str())))
    }

    fn sorted(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        pairs.sort();
        pairs
    }
}

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
        let params =
            Params::parse(b"a=1&b=&c=x%20y&resource=https://b&resource=https://a").unwrap();
        assert_eq!(params.get_all("resource"), ["https://b", "https://a"]);
        assert_eq!(
            params.encode(),
            "a=1&c=x+y&resource=https%3A%2F%2Fa&resource=https%3A%2F%2Fb"
        );
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
