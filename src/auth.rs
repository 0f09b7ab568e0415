//! Verifying bearer tokens, and minting development tokens.
//!
//! Only the configured algorithms are accepted: HS256 when a shared secret is configured, and
//! RS256/ES256/EdDSA when public keys are (PEM or a JWKS file, looked up by `kid`). `exp` and
//! `sub` are required, `nbf` is checked, `iss`/`aud` when configured, with 30 s of leeway.
//! `alg: none` never verifies, and `jku`/`x5u`/`jwk` headers are never followed.

use std::{collections::HashMap, path::Path};

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
    jwk::JwkSet,
};
use serde::{Deserialize, Serialize};

use crate::{
    config::{Config, Environment, PublicKeySource, Secret},
    error::AppError,
};

/// Leeway for `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// The claims Forklift reads from a token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user: users are keyed by their subject.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The tenant (slug or id) this token is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `"admin"` for platform administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_role: Option<String>,
    /// Cross-plane grants such as `template:author` and `vocabulary:author`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
}

/// A key and the algorithms it may verify.
struct VerifyingKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// Verifies tokens against the configured keys.
pub struct Verifier {
    secret: Option<(DecodingKey, EncodingKey)>,
    /// Public keys by `kid` (`""` for a single PEM key without a `kid`).
    public: HashMap<String, VerifyingKey>,
    issuer: Option<String>,
    audience: Option<String>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("hs256", &self.secret.is_some())
            .field("public_keys", &self.public.len())
            .finish()
    }
}

fn unauthenticated(message: &str) -> AppError {
    AppError::Unauthenticated(message.to_string())
}

impl Verifier {
    /// Builds the verifier from configuration. `secret` is the effective HS256 secret (the
    /// configured one, or the generated development one).
    pub fn new(config: &Config, secret: Option<Secret>) -> anyhow::Result<Self> {
        let secret = secret.map(|s| {
            (
                DecodingKey::from_secret(s.expose().as_bytes()),
                EncodingKey::from_secret(s.expose().as_bytes()),
            )
        });
        let mut public = HashMap::new();
        match &config.jwt_public_key {
            None => {}
            Some(PublicKeySource::Pem(value)) => {
                let pem = if value.contains("-----BEGIN") {
                    value.clone()
                } else {
                    std::fs::read_to_string(value).map_err(|e| {
                        anyhow::anyhow!("FORKLIFT_JWT_PUBLIC_KEY: cannot read {value}: {e}")
                    })?
                };
                let bytes = pem.as_bytes();
                let (key, algorithm) = if let Ok(k) = DecodingKey::from_rsa_pem(bytes) {
                    (k, Algorithm::RS256)
                } else if let Ok(k) = DecodingKey::from_ec_pem(bytes) {
                    (k, Algorithm::ES256)
                } else if let Ok(k) = DecodingKey::from_ed_pem(bytes) {
                    (k, Algorithm::EdDSA)
                } else {
                    anyhow::bail!("FORKLIFT_JWT_PUBLIC_KEY: not an RSA, EC or Ed25519 public key");
                };
                public.insert(String::new(), VerifyingKey { key, algorithm });
            }
            Some(PublicKeySource::Jwks(location)) => {
                if location.starts_with("http://") || location.starts_with("https://") {
                    anyhow::bail!(
                        "FORKLIFT_JWKS: fetching a JWKS over HTTP is not supported yet; \
                         save the document to a file and give its path"
                    );
                }
                let text = std::fs::read_to_string(location)
                    .map_err(|e| anyhow::anyhow!("FORKLIFT_JWKS: cannot read {location}: {e}"))?;
                let set: JwkSet = serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("FORKLIFT_JWKS: not a JWKS document: {e}"))?;
                for jwk in &set.keys {
                    let Some(kid) = jwk.common.key_id.clone() else {
                        continue;
                    };
                    let algorithm = match &jwk.algorithm {
                        jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                        jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => {
                            Algorithm::ES256
                        }
                        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
                        _ => continue,
                    };
                    let key = DecodingKey::from_jwk(jwk)
                        .map_err(|e| anyhow::anyhow!("FORKLIFT_JWKS: key {kid}: {e}"))?;
                    public.insert(kid, VerifyingKey { key, algorithm });
                }
                if public.is_empty() {
                    anyhow::bail!("FORKLIFT_JWKS: no usable key with a `kid`");
                }
            }
        }
        if secret.is_none() && public.is_empty() {
            anyhow::bail!(
                "FORKLIFT_JWT_SECRET: no way to verify tokens; set a secret of at least 32 bytes \
                 or FORKLIFT_JWT_PUBLIC_KEY / FORKLIFT_JWKS"
            );
        }
        Ok(Self {
            secret,
            public,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// Verifies `token` and returns its claims, or `UNAUTHENTICATED`.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        let header = decode_header(token).map_err(|_| unauthenticated("malformed token"))?;
        let (key, algorithm) = match header.alg {
            Algorithm::HS256 => match &self.secret {
                Some((key, _)) => (key, Algorithm::HS256),
                None => return Err(unauthenticated("token algorithm not accepted")),
            },
            alg => {
                let kid = header.kid.clone().unwrap_or_default();
                let entry = self
                    .public
                    .get(&kid)
                    .or_else(|| {
                        // A single PEM key verifies tokens with or without a kid.
                        (self.public.len() == 1)
                            .then(|| self.public.get(""))
                            .flatten()
                    })
                    .ok_or_else(|| unauthenticated("unknown signing key"))?;
                if entry.algorithm != alg {
                    return Err(unauthenticated("token algorithm not accepted"));
                }
                (&entry.key, alg)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = decode::<Claims>(token, key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature => unauthenticated("token expired"),
                ErrorKind::ImmatureSignature => unauthenticated("token not yet valid"),
                ErrorKind::InvalidIssuer => unauthenticated("token issuer not accepted"),
                ErrorKind::InvalidAudience => unauthenticated("token audience not accepted"),
                ErrorKind::InvalidSignature => unauthenticated("invalid token signature"),
                _ => unauthenticated("invalid token"),
            }
        })?;
        if data.claims.sub.trim().is_empty() {
            return Err(unauthenticated("token subject is empty"));
        }
        Ok(data.claims)
    }

    /// Mints an HS256 token (development tooling and tests).
    pub fn mint(&self, claims: &Claims) -> anyhow::Result<String> {
        let (_, key) = self
            .secret
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no HS256 secret configured: cannot mint tokens"))?;
        Ok(encode(&Header::new(Algorithm::HS256), claims, key)?)
    }
}

/// Options for a development token.
#[derive(Clone, Debug, Default)]
pub struct TokenRequest {
    pub sub: String,
    pub tenant: Option<String>,
    pub admin: bool,
    pub grants: Vec<String>,
    pub ttl_secs: i64,
}

impl TokenRequest {
    /// The claims of this request, issued now.
    pub fn claims(&self, config: &Config) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            sub: self.sub.clone(),
            exp: now + self.ttl_secs.max(1),
            nbf: None,
            iat: Some(now),
            iss: config.jwt_issuer.clone(),
            aud: config.jwt_audience.clone(),
            tenant: self.tenant.clone(),
            platform_role: self.admin.then(|| "admin".to_string()),
            grants: self.grants.clone(),
        }
    }
}

/// The HS256 secret in effect: `FORKLIFT_JWT_SECRET`, or in development a secret generated once
/// and kept beside the SQLite file (`<file>.jwt-secret`, or `.forklift/jwt-secret` for
/// PostgreSQL) so `forklift token` and `forklift serve` agree.
pub fn effective_secret(config: &Config) -> anyhow::Result<Option<Secret>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(Some(secret.clone()));
    }
    if config.environment == Environment::Production || config.jwt_public_key.is_some() {
        return Ok(None);
    }
    let path = match config.sqlite_path() {
        Some(db) => {
            let mut name = db.file_name().unwrap_or_default().to_os_string();
            name.push(".jwt-secret");
            db.with_file_name(name)
        }
        None => Path::new(".forklift").join("jwt-secret"),
    };
    if let Ok(existing) = std::fs::read_to_string(&path) {
        let existing = existing.trim().to_string();
        if existing.len() >= 32 {
            return Ok(Some(Secret::new(existing)));
        }
    }
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let bytes: [u8; 32] = rand::random();
    let secret = hex::encode(bytes);
    std::fs::write(&path, &secret)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(Some(Secret::new(secret)))
}
