//! Free text that a person or a program types and an event keeps: client names, reasons,
//! software ids, URIs as registered.
//!
//! The log cannot be edited, so what goes into it is checked where it enters: no control
//! character (a NUL is not even storable in a Postgres text column, and a line break forges
//! lines in logs and CSV exports) and a sane length. These rules apply to new commands only;
//! values already in the log are read back as they are.

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextRejected {
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must be at most {0} characters")]
    TooLong(usize),
}

/// Checks `value` is printable and at most `max_chars` characters long.
pub fn check(value: &str, max_chars: usize) -> Result<(), TextRejected> {
    if value.chars().any(char::is_control) {
        return Err(TextRejected::ControlCharacter);
    }
    if value.chars().count() > max_chars {
        return Err(TextRejected::TooLong(max_chars));
    }
    Ok(())
}

/// The longest URI kept (redirect URIs, logo and policy links): what browsers reliably carry.
pub const MAX_URI_CHARS: usize = 2000;
/// The longest reason, description or identifier typed by an operator or a registrant.
pub const MAX_LINE_CHARS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_overlong_text_are_refused() {
        assert_eq!(check("a\u{0}b", 10), Err(TextRejected::ControlCharacter));
        assert_eq!(check("a\tb", 10), Err(TextRejected::ControlCharacter));
        assert_eq!(check("ééé", 2), Err(TextRejected::TooLong(2)));
        assert_eq!(check("Web App ✓", 20), Ok(()));
    }
}
