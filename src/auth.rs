//! Verifying bearer tokens, and minting development tokens.
//!
//! Only the configured algorithms are accepted: HS256 when a shared secret is configured, and
//! RS256/ES256/EdDSA when public keys are (PEM, or a JWKS document from a file or a URL, looked
//! up by `kid`; an unknown `kid` causes at most one refetch of a remote JWKS a minute). `exp` and
//! `sub` are required, `nbf` is checked, and `iss`/`aud` are required and checked when configured
//! (`aud` may be an array containing the audience), with 30 s of leeway. `alg: none` never
//! verifies; tokens carrying `jku`/`x5u`/`jwk`/`x5c` or any `crit` header are refused.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

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

/// A token's `aud` claim: a single audience or several.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

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
    /// The audience: one string or, as RFC 7519 §4.1.3 allows, an array of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// The tenant (slug or id) this token is pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `"admin"` for platform administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_role: Option<String>,
    /// Cross-plane grants such as `template:author` and `vocabulary:author`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<String>,
    /// Every other claim (an identity provider's `email`, `email_verified`, …), read by name
    /// where configuration says (`FORKLIFT_JWT_EMAIL_CLAIM`).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Claims {
    /// The e-mail the token vouches for: the `email_claim` text, only when the
    /// `verified_claim` is `true` (a boolean, or the string `"true"` some providers send).
    pub fn verified_email(&self, email_claim: &str, verified_claim: &str) -> Option<String> {
        let email = self.other.get(email_claim)?.as_str()?.trim().to_lowercase();
        let verified = match self.other.get(verified_claim) {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        (verified && !email.is_empty()).then_some(email)
    }
}

/// Least time between two fetches of a remote JWKS.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// A JWKS served over HTTP(S): fetched at start, and again (at most once a minute) when a token
/// names a `kid` it does not hold — key rotation without a restart.
pub struct RemoteJwks {
    url: String,
    keys: RwLock<HashMap<String, VerifyingKey>>,
    /// When an unknown `kid` last caused a refetch (the start-up fetch does not count).
    last_fetch: Mutex<Option<Instant>>,
    client: reqwest::Client,
}

impl RemoteJwks {
    fn new(url: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Self {
            url,
            keys: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(None),
            client,
        }
    }

    /// Fetches the document and replaces the keys.
    pub async fn fetch(&self) -> anyhow::Result<usize> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await?
            .error_for_status()?;
        let text = response.text().await?;
        let keys = parse_jwks(&text)?;
        let count = keys.len();
        if let Ok(mut current) = self.keys.write() {
            *current = keys;
        }
        Ok(count)
    }

    fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        let keys = self.keys.read().ok()?;
        keys.get(kid).map(|k| (k.key.clone(), k.algorithm))
    }

    /// Starts a background refetch unless one ran within [`JWKS_REFETCH_INTERVAL`].
    fn refresh_soon(self: &Arc<Self>) {
        let due = match self.last_fetch.lock() {
            Ok(mut last) => {
                let due = last.is_none_or(|t| t.elapsed() >= JWKS_REFETCH_INTERVAL);
                if due {
                    *last = Some(Instant::now());
                }
                due
            }
            Err(_) => false,
        };
        if !due {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let source = Arc::clone(self);
            handle.spawn(async move {
                if let Err(err) = source.fetch().await {
                    tracing::warn!(error = %err, url = %source.url, "could not refetch the JWKS");
                }
            });
        }
    }
}

/// The keys of a JWKS document that have a `kid` and an algorithm Forklift accepts.
fn parse_jwks(text: &str) -> anyhow::Result<HashMap<String, VerifyingKey>> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("not a JWKS document: {e}"))?;
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let algorithm = match &jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
            jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Algorithm::EdDSA,
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| anyhow::anyhow!("key {kid}: {e}"))?;
        out.insert(kid, VerifyingKey { key, algorithm });
    }
    Ok(out)
}

/// A key and the algorithms it may verify.
#[derive(Clone)]
struct VerifyingKey {
    key: DecodingKey,
    algorithm: Algorithm,
}

/// Verifies tokens against the configured keys.
pub struct Verifier {
    secret: Option<(DecodingKey, EncodingKey)>,
    /// Public keys by `kid` (`""` for a single PEM key without a `kid`).
    public: HashMap<String, VerifyingKey>,
    /// A JWKS fetched from a URL (`FORKLIFT_JWKS=https://…`).
    remote: Option<Arc<RemoteJwks>>,
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
        let mut remote = None;
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
                    remote = Some(Arc::new(RemoteJwks::new(location.clone())));
                } else {
                    let text = std::fs::read_to_string(location).map_err(|e| {
                        anyhow::anyhow!("FORKLIFT_JWKS: cannot read {location}: {e}")
                    })?;
                    public =
                        parse_jwks(&text).map_err(|e| anyhow::anyhow!("FORKLIFT_JWKS: {e}"))?;
                    if public.is_empty() {
                        anyhow::bail!("FORKLIFT_JWKS: no usable key with a `kid`");
                    }
                }
            }
        }
        if secret.is_none() && public.is_empty() && remote.is_none() {
            anyhow::bail!(
                "FORKLIFT_JWT_SECRET: no way to verify tokens; set a secret of at least 32 bytes \
                 or FORKLIFT_JWT_PUBLIC_KEY / FORKLIFT_JWKS"
            );
        }
        Ok(Self {
            secret,
            public,
            remote,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        })
    }

    /// Verifies `token` and returns its claims, or `UNAUTHENTICATED`.
    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        let header = decode_header(token).map_err(|_| unauthenticated("malformed token"))?;
        // RFC 7515 §4.1.11: a `crit` header names extensions the recipient must understand;
        // this server implements none, so any `crit` is refused. Keys are never taken from
        // the token itself (`jku`, `x5u`, `jwk`, `x5c`).
        if header.crit.is_some() {
            return Err(unauthenticated(
                "the token's `crit` header names extensions this server does not implement",
            ));
        }
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
        {
            return Err(unauthenticated(
                "tokens may not carry their own keys (`jku`, `x5u`, `jwk`, `x5c`)",
            ));
        }
        let (key, algorithm) = match header.alg {
            Algorithm::HS256 => match &self.secret {
                Some((key, _)) => (key.clone(), Algorithm::HS256),
                None => return Err(unauthenticated("token algorithm not accepted")),
            },
            alg => {
                let kid = header.kid.clone().unwrap_or_default();
                let local = self.public.get(&kid).or_else(|| {
                    // A single PEM key verifies tokens with or without a kid.
                    (self.public.len() == 1)
                        .then(|| self.public.get(""))
                        .flatten()
                });
                let (key, algorithm) = match (local, &self.remote) {
                    (Some(entry), _) => (entry.key.clone(), entry.algorithm),
                    (None, Some(remote)) => match remote.key(&kid) {
                        Some(found) => found,
                        None => {
                            // Perhaps a rotated key: refetch (at most once a minute).
                            remote.refresh_soon();
                            return Err(unauthenticated("unknown signing key"));
                        }
                    },
                    (None, None) => return Err(unauthenticated("unknown signing key")),
                };
                if algorithm != alg {
                    return Err(unauthenticated("token algorithm not accepted"));
                }
                (key, alg)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // A configured issuer or audience is required, not merely checked when present.
        let mut required = vec!["exp", "sub"];
        if self.issuer.is_some() {
            required.push("iss");
        }
        if self.audience.is_some() {
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        match &self.issuer {
            Some(iss) => validation.set_issuer(&[iss]),
            None => validation.iss = None,
        }
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        let data = decode::<Claims>(token, &key, &validation).map_err(|err| {
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
        if crate::text::claims_have_nul(&data.claims) {
            return Err(crate::text::nul_error("Authorization"));
        }
        Ok(data.claims)
    }

    /// Fetches the remote JWKS, when one is configured (at start-up).
    pub async fn fetch_remote_keys(&self) -> anyhow::Result<()> {
        if let Some(remote) = &self.remote {
            let count = remote
                .fetch()
                .await
                .map_err(|e| anyhow::anyhow!("FORKLIFT_JWKS: cannot fetch {}: {e}", remote.url))?;
            anyhow::ensure!(
                count > 0,
                "FORKLIFT_JWKS: {} has no usable key with a `kid`",
                remote.url
            );
        }
        Ok(())
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
            aud: config.jwt_audience.clone().map(Audience::One),
            tenant: self.tenant.clone(),
            platform_role: self.admin.then(|| "admin".to_string()),
            grants: self.grants.clone(),
            other: Default::default(),
        }
    }
}

/// Where a development secret is kept: `.forklift/jwt-secret` in the working directory, whatever
/// the database, so `forklift token` and `forklift serve` agree with or without `DATABASE_URL`.
pub const DEV_SECRET_FILE: &str = ".forklift/jwt-secret";

/// The HS256 secret in effect: `FORKLIFT_JWT_SECRET`, or in development a secret generated once
/// and kept in [`DEV_SECRET_FILE`]. (A secret an earlier version kept beside a SQLite file,
/// `<file>.jwt-secret`, is adopted, so its tokens stay valid.)
pub fn effective_secret(config: &Config) -> anyhow::Result<Option<Secret>> {
    if let Some(secret) = &config.jwt_secret {
        return Ok(Some(secret.clone()));
    }
    if config.environment == Environment::Production || config.jwt_public_key.is_some() {
        return Ok(None);
    }
    let path = Path::new(DEV_SECRET_FILE).to_path_buf();
    let legacy = config.sqlite_path().map(|db| {
        let mut name = db.file_name().unwrap_or_default().to_os_string();
        name.push(".jwt-secret");
        db.with_file_name(name)
    });
    let kept = |path: &Path| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| s.len() >= 32)
    };
    if let Some(existing) = kept(&path) {
        return Ok(Some(Secret::new(existing)));
    }
    let adopted = legacy.as_deref().and_then(kept);
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    let secret = adopted.unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
    std::fs::write(&path, &secret)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(Some(Secret::new(secret)))
}
