//! A minimal keep-alive HTTP/1.1 client over hyper's connection API: one TCP connection, one
//! request at a time, reconnect after a failure. Cheaper per request than a pooled client, so the
//! load generator is not what is being measured.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST, HeaderMap, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::error::{Context, Result, bail};

/// One answer, body read to the end.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// `name=value` of the `Set-Cookie` for `name`, if any.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let prefix = format!("{name}=");
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|c| c.starts_with(&prefix))
            .map(|c| c.split(';').next().unwrap_or(c).to_owned())
    }

    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok())
    }

    /// Fails unless the status is `want`.
    pub fn expect(self, want: u16, what: &str) -> Result<Self> {
        if self.status != want {
            let body = String::from_utf8_lossy(&self.body);
            let body: String = body.chars().take(200).collect();
            bail!("{what}: HTTP {} (expected {want}): {body}", self.status);
        }
        Ok(self)
    }
}

/// How a request authenticates.
#[derive(Debug, Clone, Copy)]
pub enum Auth<'a> {
    /// No credentials.
    None,
    /// A `Cookie` header.
    Cookie(&'a str),
    /// `Authorization: Bearer`.
    Bearer(&'a str),
}

impl<'a> Auth<'a> {
    fn cookie(cookie: Option<&'a str>) -> Self {
        cookie.map_or(Auth::None, Auth::Cookie)
    }
}

/// A keep-alive connection to one server.
pub struct Conn {
    addr: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Conn {
    /// Not connected yet; the first request connects.
    pub fn new(addr: SocketAddr) -> Result<Self> {
        let host = HeaderValue::from_str(&addr.to_string()).ctx("host header")?;
        Ok(Conn { addr, host, sender: None })
    }

    /// Opens the TCP connection now (if not open).
    pub async fn connect(&mut self) -> Result<()> {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return Ok(());
        }
        self.sender = None;
        let stream = TcpStream::connect(self.addr).await.ctx(&format!("connect {}", self.addr))?;
        stream.set_nodelay(true).ctx("TCP_NODELAY")?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ctx("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends a request without a body and reads the whole answer.
    pub async fn send(&mut self, method: Method, target: &str, cookie: Option<&str>) -> Result<Reply> {
        self.send_with(method, target, Auth::cookie(cookie), None).await
    }

    /// Sends a request with a JSON body (`Some`) and a cookie or a bearer token.
    pub async fn send_with(
        &mut self,
        method: Method,
        target: &str,
        auth: Auth<'_>,
        json: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let result = self.try_send(method, target, auth, json).await;
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn try_send(
        &mut self,
        method: Method,
        target: &str,
        auth: Auth<'_>,
        json: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        self.connect().await?;
        let sender = self.sender.as_mut().ctx("not connected")?;
        sender.ready().await.ctx("connection not ready")?;
        let mut req = Request::builder().method(method).uri(target).header(HOST, self.host.clone());
        match auth {
            Auth::Cookie(c) => req = req.header(COOKIE, c),
            Auth::Bearer(t) => req = req.header(AUTHORIZATION, format!("Bearer {t}")),
            Auth::None => {}
        }
        let body = match json {
            Some(v) => {
                req = req.header(CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(v).ctx("JSON body")?)
            }
            None => Bytes::new(),
        };
        let req = req.body(Full::new(body)).ctx("request")?;
        let resp = sender.send_request(req).await.ctx(target)?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.ctx("response body")?.to_bytes();
        Ok(Reply { status: parts.status.as_u16(), headers: parts.headers, body })
    }
}
