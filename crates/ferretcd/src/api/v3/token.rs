//! v3 auth tokens (`--auth-token`), as etcd's `auth/simple_token.go` and
//! `auth/jwt.go` make and read them.
//!
//! - **simple** (the default): the member that receives an Authenticate
//!   draws 16 random letters and puts them in the log entry; every member
//!   applying the entry registers `<letters>.<entry index>` for the user
//!   (`ferret_mvcc::auth::SimpleTokens`), forgotten after
//!   `--auth-token-ttl` seconds without use, and when the user is deleted,
//!   changes password, or auth is disabled. A token names its entry, so a
//!   member that has not applied it yet waits until it has.
//! - **jwt** (`jwt,pub-key=<file>,priv-key=<file>,sign-method=<alg>,ttl=<dur>`):
//!   a signed token of `{"exp", "revision", "username"}`, made by the
//!   member that received the Authenticate from what applying it gave
//!   (the user and the auth revision then); any member holding the key
//!   verifies it, and it carries the auth revision it was issued at, so a
//!   change of the auth store makes it stale (`revision of auth store is
//!   old`). ferretcd verifies RS*, PS* and ES* tokens with the public key
//!   (`pub-key`, required for them: etcd derives it from the private key,
//!   which the `jsonwebtoken` crate cannot); ES* private keys are PKCS#8
//!   PEM. A member with only a public key verifies but cannot issue, as
//!   etcd's ("token signing attempted with verify-only key").
//! - an empty `--auth-token`: etcd's "nop" provider, which issues empty
//!   tokens and accepts none.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferret_mvcc::AuthInfo;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;

/// How tokens are made and read.
pub enum TokenProvider {
    Nop,
    Simple,
    Jwt(Box<Jwt>),
}

impl std::fmt::Debug for TokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenProvider::Nop => write!(f, "Nop"),
            TokenProvider::Simple => write!(f, "Simple"),
            TokenProvider::Jwt(j) => write!(f, "Jwt({:?}, ttl {:?})", j.alg, j.ttl),
        }
    }
}

/// A JWT provider's keys.
pub struct Jwt {
    alg: Algorithm,
    /// `None`: verify only.
    signing: Option<EncodingKey>,
    verifying: DecodingKey,
    ttl: Duration,
}

/// etcd's JWT claims (jwt-go's `MapClaims`, whose JSON has its keys in
/// this order).
#[derive(serde::Serialize, serde::Deserialize)]
struct Claims {
    exp: i64,
    revision: u64,
    username: String,
}

/// The letters of a simple token's prefix (etcd's).
const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const SIMPLE_TOKEN_LEN: usize = 16;

/// etcd's message when `--auth-token` is not understood.
pub const INVALID_AUTH_OPTS: &str = "auth: invalid auth options";

impl TokenProvider {
    /// etcd's `NewTokenProvider` over `decomposeOpts`: the type, then
    /// `name=value` options.
    pub fn parse(opts: &str) -> Result<TokenProvider, String> {
        let mut parts = opts.split(',');
        let kind = parts.next().unwrap_or("");
        let mut map = std::collections::BTreeMap::new();
        for p in parts {
            let kv: Vec<&str> = p.split('=').collect();
            if kv.len() != 2 || map.insert(kv[0], kv[1]).is_some() {
                return Err(INVALID_AUTH_OPTS.into());
            }
        }
        match kind {
            "simple" => Ok(TokenProvider::Simple),
            "" => Ok(TokenProvider::Nop),
            "jwt" => Jwt::from_options(&map).map(|j| TokenProvider::Jwt(Box::new(j))),
            _ => Err(INVALID_AUTH_OPTS.into()),
        }
    }

    /// What the receiving member puts in an Authenticate entry: a simple
    /// token's random prefix, or nothing.
    pub fn prefix(&self) -> String {
        match self {
            TokenProvider::Simple => {
                let mut rng = rand::rngs::OsRng;
                (0..SIMPLE_TOKEN_LEN)
                    .map(|_| LETTERS[rng.gen_range(0..LETTERS.len())] as char)
                    .collect()
            }
            _ => String::new(),
        }
    }
}

impl Jwt {
    fn from_options(opts: &std::collections::BTreeMap<&str, &str>) -> Result<Jwt, String> {
        let ttl = match opts.get("ttl").filter(|t| !t.is_empty()) {
            None => Duration::from_secs(300),
            Some(t) => ferret_gocompat::time::parse_duration(t)
                .ok()
                .and_then(|d| u64::try_from(d).ok())
                .map(Duration::from_nanos)
                .ok_or_else(|| INVALID_AUTH_OPTS.to_string())?,
        };
        let read = |k: &str| -> Result<Option<Vec<u8>>, String> {
            match opts.get(k).filter(|f| !f.is_empty()) {
                None => Ok(None),
                Some(f) => std::fs::read(f)
                    .map(Some)
                    .map_err(|e| format!("open {f}: {e}")),
            }
        };
        let public = read("pub-key")?;
        let private = read("priv-key")?;
        let alg = match opts.get("sign-method").copied().unwrap_or("") {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "PS256" => Algorithm::PS256,
            "PS384" => Algorithm::PS384,
            "PS512" => Algorithm::PS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            _ => return Err("auth: invalid auth signature method".into()),
        };
        let missing = || "auth: missing key data".to_string();
        let bad = |e: jsonwebtoken::errors::Error| format!("auth: {e}");
        let (signing, verifying) = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let k = private.ok_or_else(missing)?;
                (
                    Some(EncodingKey::from_secret(&k)),
                    DecodingKey::from_secret(&k),
                )
            }
            Algorithm::ES256 | Algorithm::ES384 => {
                let p = public.ok_or_else(missing)?;
                let signing = match private {
                    Some(k) => Some(EncodingKey::from_ec_pem(&k).map_err(bad)?),
                    None => None,
                };
                (signing, DecodingKey::from_ec_pem(&p).map_err(bad)?)
            }
            _ => {
                let p = public.ok_or_else(missing)?;
                let signing = match private {
                    Some(k) => Some(EncodingKey::from_rsa_pem(&k).map_err(bad)?),
                    None => None,
                };
                (signing, DecodingKey::from_rsa_pem(&p).map_err(bad)?)
            }
        };
        Ok(Jwt {
            alg,
            signing,
            verifying,
            ttl,
        })
    }

    /// etcd's `tokenJWT.assign`.
    pub fn assign(&self, user: &str, revision: u64) -> Result<String, String> {
        let Some(key) = &self.signing else {
            return Err("auth: token signing attempted with verify-only key".into());
        };
        let exp = SystemTime::now()
            .checked_add(self.ttl)
            .unwrap_or(SystemTime::now())
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let claims = Claims {
            exp,
            revision,
            username: user.to_string(),
        };
        jsonwebtoken::encode(&Header::new(self.alg), &claims, key).map_err(|e| e.to_string())
    }

    /// etcd's `tokenJWT.info`: a token signed with this key by this
    /// method, not expired.
    pub fn info(&self, token: &str) -> Option<AuthInfo> {
        let mut v = Validation::new(self.alg);
        v.leeway = 0;
        v.validate_exp = true;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &self.verifying, &v).ok()?;
        Some(AuthInfo {
            user: data.claims.username,
            revision: data.claims.revision,
        })
    }
}

/// A simple token's entry index: `<prefix>.<index>` (etcd's
/// `isValidSimpleToken` shape check).
pub fn simple_token_index(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (_, index, rest) = (parts.next()?, parts.next()?, parts.next());
    if rest.is_some() {
        return None;
    }
    index.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_etcds() {
        assert!(matches!(
            TokenProvider::parse("simple"),
            Ok(TokenProvider::Simple)
        ));
        assert!(matches!(TokenProvider::parse(""), Ok(TokenProvider::Nop)));
        assert_eq!(
            TokenProvider::parse("foo").unwrap_err(),
            "auth: invalid auth options"
        );
        assert_eq!(
            TokenProvider::parse("jwt,ttl").unwrap_err(),
            "auth: invalid auth options"
        );
        assert_eq!(
            TokenProvider::parse("jwt,sign-method=XX").unwrap_err(),
            "auth: invalid auth signature method"
        );
        let p = TokenProvider::Simple.prefix();
        assert_eq!(p.len(), 16);
        assert!(p.bytes().all(|b| b.is_ascii_alphabetic()));
        assert_eq!(simple_token_index("abc.12"), Some(12));
        assert_eq!(simple_token_index("abc"), None);
        assert_eq!(simple_token_index("a.b.1"), None);
    }

    #[test]
    fn hmac_tokens_carry_user_and_revision() {
        let dir = std::env::temp_dir().join(format!("ferret-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k");
        std::fs::write(&key, b"secret").unwrap();
        let p = TokenProvider::parse(&format!("jwt,priv-key={},sign-method=HS256", key.display()))
            .unwrap();
        let TokenProvider::Jwt(j) = p else {
            panic!("a JWT provider")
        };
        let t = j.assign("alice", 7).unwrap();
        assert_eq!(
            j.info(&t),
            Some(AuthInfo {
                user: "alice".into(),
                revision: 7
            })
        );
        assert_eq!(j.info(&format!("{t}x")), None, "a bad signature");
        let _ = std::fs::remove_dir_all(dir);
    }
}
