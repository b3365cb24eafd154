//! An HTTP client that behaves like a browser for what the tests need: it keeps cookies (all of
//! them, including `Secure` ones on loopback, as browsers do), sends `Origin` on POST, and copies
//! the CSRF cookie into forms.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::header;

#[derive(Clone)]
pub struct TestClient {
    base: String,
    http: reqwest::Client,
    jar: Arc<Mutex<BTreeMap<String, String>>>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub text: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }

    pub fn set_cookies(&self) -> Vec<String> {
        self.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect()
    }

    pub fn location(&self) -> Option<String> {
        self.header("location")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl TestClient {
    pub fn new(base: &str) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .danger_accept_invalid_certs(true)
            .no_proxy()
            .build()
            .expect("HTTP client");
        Self { base: base.trim_end_matches('/').to_owned(), http, jar: Arc::default() }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar.lock().expect("jar").get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.jar.lock().expect("jar").insert(name.into(), value.into());
    }

    fn cookie_header(&self) -> Option<String> {
        let jar = self.jar.lock().expect("jar");
        (!jar.is_empty()).then(|| jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "))
    }

    fn absorb(&self, resp: &reqwest::Response) {
        let mut jar = self.jar.lock().expect("jar");
        for v in resp.headers().get_all(header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let Some((name, rest)) = v.split_once('=') else {
                continue;
            };
            let value = rest.split(';').next().unwrap_or("");
            if v.contains("Max-Age=0") || value.is_empty() {
                jar.remove(name);
            } else {
                jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    async fn finish(&self, resp: reqwest::Response) -> Response {
        self.absorb(&resp);
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        Response { status, headers, text }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") { path.to_owned() } else { format!("{}{}", self.base, path) }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Response {
        let req = match self.cookie_header() {
            Some(c) => req.header(header::COOKIE, c),
            None => req,
        };
        let resp = req.send().await.expect("request");
        self.finish(resp).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.send(self.http.get(self.url(path))).await
    }

    /// Fetches the CSRF cookie the way a browser gets it: by loading a page first.
    pub async fn ensure_csrf(&self) -> String {
        if self.cookie("__Host-burnrate_csrf").is_none() {
            self.get("/login").await;
        }
        self.cookie("__Host-burnrate_csrf").expect("the server sets a CSRF cookie on pages")
    }

    /// Submits a form as the site's own page would: with the CSRF token and our `Origin`.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.ensure_csrf().await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf", &csrf));
        self.post_form_raw(path, &all, Some(&self.base.clone())).await
    }

    /// Submits exactly `fields`, with `origin` as the `Origin` header (or none).
    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)], origin: Option<&str>) -> Response {
        let mut req = self.http.post(self.url(path)).form(fields);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        self.send(req).await
    }

    pub fn raw(&self) -> &reqwest::Client {
        &self.http
    }

    /// An API request with a bearer key.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<serde_json::Value>,
    ) -> Response {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        self.finish(resp).await
    }
}
