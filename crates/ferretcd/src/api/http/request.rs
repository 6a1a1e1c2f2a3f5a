//! Reading a request: its body, within a limit, and its form parameters.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request};

use crate::api::http::form::Form;

/// Reads the parameters as Go's `ParseForm`: a URL-encoded body of a PUT or
/// POST (of at most `limit` bytes) first, then the query string. The error
/// is Go's text, the first one met.
pub async fn read_form(req: Request<Incoming>, limit: u64) -> Result<Form, String> {
    let mut form = Form::default();
    let mut first_err = None;
    let query = req.uri().query().map(|q| q.as_bytes().to_vec());
    let reads_body = matches!(*req.method(), Method::PUT | Method::POST | Method::PATCH);
    if reads_body {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_else(|| b"application/octet-stream".to_vec());
        match media_type(&content_type) {
            Err(e) => first_err = Some(e),
            Ok(t) if t == "application/x-www-form-urlencoded" => {
                let body = read_body(req.into_body(), limit).await?;
                if let Err(e) = form.parse_into(&body) {
                    first_err = Some(e);
                }
            }
            Ok(_) => {}
        }
    }
    if let Some(q) = query {
        if let Err(e) = form.parse_into(&q) {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(form),
    }
}

/// Reads a request body of at most `limit` bytes; a longer one is Go's
/// `http: POST too large`.
pub async fn read_body(body: Incoming, limit: u64) -> Result<Bytes, String> {
    let limited = http_body_util::Limited::new(body, limit as usize);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err("http: POST too large".to_string())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// Go's `mime.ParseMediaType`, reduced to what `ParseForm` needs: the
/// lowercased type, or Go's error for a missing type.
fn media_type(v: &[u8]) -> Result<String, String> {
    let s = String::from_utf8_lossy(v);
    let t = s
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if t.is_empty() {
        return Err("mime: no media type".into());
    }
    if !t.contains('/') {
        return Err("mime: expected slash after first token".into());
    }
    Ok(t)
}
