//! Certificate validity computation (clamping to policy and signer expiry).

use std::time::Duration;

use time::OffsetDateTime;

use super::error::PkiError;

/// Default lifetime when the request does not specify one (cert-manager: 90d).
pub const DEFAULT_DURATION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Backdating of notBefore to tolerate clock skew.
pub const BACKDATE: Duration = Duration::from_secs(60);

/// How long before the request was checked an issued certificate's notBefore may lie, for
/// every backend: our own backdating ([`BACKDATE`]), CFSSL's default 5-minute backdate and
/// Vault's `not_before_duration` (default 30s) fit, with room for clock skew. A remote CA
/// that backdates further (`not_before_duration=87600h`) fails the after-signing check.
pub const MAX_BACKDATE: Duration = Duration::from_secs(10 * 60);

/// What determined `not_after`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClampReason {
    /// The requested (or default) duration.
    Requested,
    /// The policy's maximum duration.
    MaxDuration,
    /// The earliest notAfter in the signer chain.
    SignerExpiry,
}

/// The validity window of a certificate to issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// `now - 60s`.
    pub not_before: OffsetDateTime,
    /// `min(now + requested, now + max, chain_not_after)`.
    pub not_after: OffsetDateTime,
    /// Which bound won.
    pub clamped_by: ClampReason,
}

/// Computes the validity window. Long requests are clamped rather than
/// refused; fails only if the signer chain is already expired.
pub fn clamp_validity(
    now: OffsetDateTime,
    requested: Option<Duration>,
    max_duration: Duration,
    chain_not_after: OffsetDateTime,
) -> Result<Validity, PkiError> {
    let far =
        |d: Duration| now.checked_add(time::Duration::try_from(d).unwrap_or(time::Duration::MAX));
    let req = far(requested.unwrap_or(DEFAULT_DURATION));
    let max = far(max_duration);
    let mut not_after = chain_not_after;
    let mut clamped_by = ClampReason::SignerExpiry;
    if let Some(max) = max.filter(|m| *m < not_after) {
        not_after = max;
        clamped_by = ClampReason::MaxDuration;
    }
    if let Some(req) = req.filter(|r| *r <= not_after) {
        not_after = req;
        clamped_by = ClampReason::Requested;
    }
    if not_after <= now {
        return Err(PkiError::SignerNotValid(format!(
            "the signer chain expired at {chain_not_after}; no certificate can be issued"
        )));
    }
    Ok(Validity {
        not_before: now - BACKDATE,
        not_after,
        clamped_by,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap()
    }

    #[test]
    fn clamped_by_requested() {
        let v = clamp_validity(now(), Some(DAY), 90 * DAY, now() + 365 * DAY).unwrap();
        assert_eq!(v.not_after, now() + DAY);
        assert_eq!(v.not_before, now() - BACKDATE);
        assert_eq!(v.clamped_by, ClampReason::Requested);
        let v = clamp_validity(now(), None, 365 * DAY, now() + 365 * DAY).unwrap();
        assert_eq!(v.not_after, now() + 90 * DAY, "default 90d");
    }

    #[test]
    fn clamped_by_max_duration() {
        let century = Duration::from_secs(100 * 365 * 86400);
        let v = clamp_validity(now(), Some(century), 30 * DAY, now() + 365 * DAY).unwrap();
        assert_eq!(v.not_after, now() + 30 * DAY);
        assert_eq!(v.clamped_by, ClampReason::MaxDuration);
        // Absurd values do not overflow.
        let v = clamp_validity(now(), Some(Duration::MAX), Duration::MAX, now() + DAY).unwrap();
        assert_eq!(v.clamped_by, ClampReason::SignerExpiry);
    }

    #[test]
    fn clamped_by_signer_expiry() {
        let v = clamp_validity(now(), Some(90 * DAY), 90 * DAY, now() + 10 * DAY).unwrap();
        assert_eq!(v.not_after, now() + 10 * DAY);
        assert_eq!(v.clamped_by, ClampReason::SignerExpiry);
    }

    #[test]
    fn expired_signer_is_an_error() {
        let err = clamp_validity(now(), None, 90 * DAY, now() - DAY).unwrap_err();
        assert!(
            matches!(err, PkiError::SignerNotValid(ref m) if m.contains("expired")),
            "{err}"
        );
        assert!(clamp_validity(now(), None, 90 * DAY, now()).is_err());
    }
}
