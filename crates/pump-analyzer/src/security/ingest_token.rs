//! The ingest token (SPEC §2.1). Several tokens may be valid at once (rotation without downtime)
//! and the list can be replaced at run time (`SIGHUP`). Tokens are kept only as SHA-256 digests and
//! compared in constant time, so neither timing nor a memory dump of the list reveals them.

use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a request's token was refused; the messages are the ones SPEC §2.1 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    Invalid,
}

impl TokenError {
    pub fn message(self) -> &'static str {
        match self {
            TokenError::Missing => "X-Ingest-Token header is required",
            TokenError::Invalid => "Invalid ingest token",
        }
    }
}

/// The set of accepted ingest tokens.
#[derive(Default)]
pub struct IngestTokens {
    digests: RwLock<Arc<Vec<[u8; 32]>>>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl IngestTokens {
    pub fn new(tokens: &[String]) -> Self {
        let this = Self::default();
        this.replace(tokens);
        this
    }

    /// Replaces the accepted tokens (empty = ingest open).
    pub fn replace(&self, tokens: &[String]) {
        let digests: Vec<[u8; 32]> = tokens.iter().map(|t| digest(t.as_bytes())).collect();
        *self.digests.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(digests);
    }

    /// Whether any token is configured.
    pub fn required(&self) -> bool {
        !self.current().is_empty()
    }

    pub fn count(&self) -> usize {
        self.current().len()
    }

    fn current(&self) -> Arc<Vec<[u8; 32]>> {
        self.digests.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Checks the presented header value. Every configured token is compared, whatever matched,
    /// so the time taken does not say which one (or whether any) matched.
    pub fn check(&self, presented: Option<&[u8]>) -> Result<(), TokenError> {
        let digests = self.current();
        if digests.is_empty() {
            return Ok(());
        }
        let presented = presented.filter(|p| !p.is_empty()).ok_or(TokenError::Missing)?;
        let candidate = digest(presented);
        let matched = digests.iter().fold(subtle::Choice::from(0), |acc, d| acc | d.ct_eq(&candidate));
        if bool::from(matched) { Ok(()) } else { Err(TokenError::Invalid) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tokens_means_open_ingest() {
        let tokens = IngestTokens::new(&[]);
        assert!(!tokens.required());
        assert_eq!(tokens.check(None), Ok(()));
    }

    #[test]
    fn missing_wrong_and_right_tokens() {
        let tokens = IngestTokens::new(&["old".into(), "new".into()]);
        assert_eq!(tokens.check(None), Err(TokenError::Missing));
        assert_eq!(tokens.check(Some(b"")), Err(TokenError::Missing));
        assert_eq!(tokens.check(Some(b"nope")), Err(TokenError::Invalid));
        assert_eq!(tokens.check(Some(b"ol")), Err(TokenError::Invalid));
        assert_eq!(tokens.check(Some(b"old")), Ok(()));
        assert_eq!(tokens.check(Some(b"new")), Ok(()));
    }

    #[test]
    fn replacing_the_list_takes_effect_at_once() {
        let tokens = IngestTokens::new(&["a".into()]);
        tokens.replace(&["b".into()]);
        assert_eq!(tokens.check(Some(b"a")), Err(TokenError::Invalid));
        assert_eq!(tokens.check(Some(b"b")), Ok(()));
    }
}
