//! Request parameters of the OAuth endpoints (RFC 6749 §3.1, §3.2): each may appear at most
//! once, and an empty value counts as absent.

use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` data (a body or a query string). Returns the
    /// name of a repeated parameter as the error.
    pub fn parse(encoded: &[u8]) -> Result<Params, String> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(encoded) {
            if value.is_empty() {
                continue;
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(name.into_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_parameter_is_refused_and_empty_ones_are_absent() {
        assert_eq!(Params::parse(b"a=1&a=2").unwrap_err(), "a");
        let params = Params::parse(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("x y"));
    }
}
