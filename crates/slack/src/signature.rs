//! Verifying that an Events API request comes from Slack: the `v0` signature, an
//! HMAC-SHA256 of `v0:<timestamp>:<raw body>` with the app's signing secret, and a
//! timestamp no more than five minutes away (so a captured request cannot be replayed).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from now, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 5 * 60;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no X-Slack-Request-Timestamp or X-Slack-Signature header")]
    Missing,
    #[error("the request timestamp is not a number")]
    BadTimestamp,
    #[error("the request timestamp is more than five minutes away from now (a replay, or a wrong clock)")]
    Stale,
    #[error("the signature does not match: check SLACK_SIGNING_SECRET")]
    Mismatch,
}

/// Checks a request: its `X-Slack-Request-Timestamp` and `X-Slack-Signature` headers, its
/// raw body, against the signing secret, at `now` (Unix seconds).
pub fn verify(
    signing_secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let seconds: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    if (now - seconds).abs() > MAX_CLOCK_SKEW_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(signing_secret, timestamp.trim(), body);
    if bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `v0=<hex>` signature of a request, as Slack computes it (tests sign requests with it).
pub fn sign(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC accepts a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(signing_secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("v0={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Slack's "Verifying requests from Slack".
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TIMESTAMP: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    #[test]
    fn slacks_documented_example_verifies() {
        assert_eq!(sign(SECRET, TIMESTAMP, BODY.as_bytes()), SIGNATURE);
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), BODY.as_bytes(), 1_531_420_618 + 60), Ok(()));
    }

    #[test]
    fn tampering_replays_and_wrong_secrets_are_refused() {
        let now = 1_531_420_618;
        let body = BODY.as_bytes();
        let tampered = BODY.replace("roadrunner", "coyote");
        assert_eq!(
            verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), tampered.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(verify("other-secret", Some(TIMESTAMP), Some(SIGNATURE), body, now), Err(SignatureError::Mismatch));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), body, now + 301), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some(SIGNATURE), body, now - 301), Err(SignatureError::Stale));
        assert_eq!(verify(SECRET, None, Some(SIGNATURE), body, now), Err(SignatureError::Missing));
        assert_eq!(verify(SECRET, Some("soon"), Some(SIGNATURE), body, now), Err(SignatureError::BadTimestamp));
        assert_eq!(verify(SECRET, Some(TIMESTAMP), Some("v0=00"), body, now), Err(SignatureError::Mismatch));
    }
}
