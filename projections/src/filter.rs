//! List filters as SQL: a condition for each filter that is set, over numbered parameters,
//! and nothing for the ones that are not.
//!
//! The alternative, one fixed statement with `($1 = '' OR client_id = $1)` for every filter,
//! reads well but plans badly: after a prepared statement's fifth run Postgres may switch to
//! its generic plan, which cannot know which filters are empty and so uses none of the
//! per-column indexes; a page of a busy log then scans it from the end. A statement per
//! combination of filters keeps every page one index range (and sqlx caches each one).

/// The conditions of a query's `WHERE`, each followed by `AND`, and their values in
/// parameter order.
#[derive(Debug, Default)]
pub(crate) struct Conditions {
    sql: String,
    values: Vec<String>,
}

impl Conditions {
    /// Adds `column operator $n` when `value` is set.
    pub(crate) fn and(mut self, column: &str, operator: &str, value: Option<&str>) -> Self {
        if let Some(value) = value {
            self.values.push(value.to_owned());
            self.sql
                .push_str(&format!("{column} {operator} ${} AND ", self.values.len()));
        }
        self
    }

    /// The conditions, to be followed by at least one more (`... AND {sql} x > $n`).
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    /// The placeholder of the query's `n`-th own parameter (1-based), after the filter's.
    pub(crate) fn param(&self, n: usize) -> String {
        format!("${}", self.values.len() + n)
    }

    pub(crate) fn values(&self) -> &[String] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_filters_that_are_set_become_conditions() {
        let conditions = Conditions::default()
            .and("client_id", "=", None)
            .and("username", "=", Some("alice"))
            .and("occurred_at", ">=", Some("2026-11-27T00:00:00Z"));
        assert_eq!(conditions.sql(), "username = $1 AND occurred_at >= $2 AND ");
        assert_eq!(conditions.param(1), "$3");
        assert_eq!(conditions.values(), ["alice", "2026-11-27T00:00:00Z"]);
    }
}
