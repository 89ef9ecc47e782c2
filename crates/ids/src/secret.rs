//! The one redacting wrapper for secret strings.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string: an API token, a signing secret, a credential header value. Its `Debug` prints
/// `<redacted>` (so a deriving wrapper prints `Name(<redacted>)`) and it has no `Display`; the
/// value is read only through [`Secret::expose`], where it is sent or used as a key. It
/// serializes as the plain string because a request body that carries a secret must contain it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Token(Secret);
        let token = Token(Secret::new("xoxb-1"));
        assert_eq!(format!("{token:?}"), "Token(<redacted>)");
    }
}
