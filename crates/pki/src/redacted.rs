//! [`Redacted`]: a secret whose `Debug` output never shows it (keys, tokens, auth secrets).

use std::fmt;
use std::ops::Deref;

/// A value that `Debug` prints as `<redacted>`; it has no `Display`. Read it through `Deref`
/// or [`Redacted::expose`], where it is really needed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Redacted<T>(pub T);

impl<T> Redacted<T> {
    /// The secret itself.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Redacted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<T> Deref for Redacted<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> From<T> for Redacted<T> {
    fn from(t: T) -> Self {
        Redacted(t)
    }
}

impl From<&str> for Redacted<String> {
    fn from(s: &str) -> Self {
        Redacted(s.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: String,
            password: Redacted<String>,
        }
        let l = Login {
            user: "svc".into(),
            password: "hunter2".into(),
        };
        let text = format!("{l:?} {:#?}", l);
        assert!(
            text.contains("svc") && text.contains("<redacted>"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert_eq!(l.password.expose(), "hunter2");
        assert_eq!(l.password.len(), 7, "Deref reaches the value");
    }
}
