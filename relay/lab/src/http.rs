//! The lab's web server (`http://lab/`, port 80): HTTP/1.1 by hyper, routed by axum, with pages to parse, a
//! small JSON API and XML-RPC.
//!
//! Resources:
//! - `/` an HTML index linking everything below; `/hello.txt` plain text; `/links.html` and `/table.html`,
//!   small pages for link and table parsing exercises.
//! - `/api/time`: `{"unix": seconds, "iso": "YYYY-MM-DDTHH:MM:SSZ"}`.
//! - `/api/echo`, any method: the request back as JSON (method, path, raw query, parsed `args`, headers with
//!   lowercase names, body as text, body length).
//! - `/api/quotes`: a JSON list of quotations; `/api/quotes/<id>` one of them (ids from 1), or a 404 with a
//!   JSON `{"error": ...}`.
//! - `/status/<code>`: any status from 200 to 599, for error-handling lessons; `/redirect`: a 302 to
//!   `/hello.txt`.
//! - `POST /RPC2`: XML-RPC (for `xmlrpc.client.ServerProxy('http://lab/RPC2')`), in `xmlrpc`: `add(a, b)`,
//!   `echo(x)`, `lab.time()`, `lab.quote()`, `system.listMethods()`, `system.methodHelp(name)`. Faults:
//!   -32700 not well-formed XML, -32600 not an XML-RPC call, -32601 no such method, -32602 wrong parameters.
//!   Value types: int/i4/i8, boolean, string and bare text, double, dateTime.iso8601 (kept as text),
//!   base64, array, struct, nil.
//!
//! No accounts, no state: every session sees the same site. Limits: request bodies [`MAX_BODY`] (413 past
//! it), request line and headers [`MAX_HEADERS`] (431), XML nesting (`xmlrpc::MAX_DEPTH`). A connection
//! whose client sends or reads nothing for the idle timeout is closed, and a request's headers must all
//! arrive within it (no slowloris). Malformed requests get hyper's own 400. Deliberately omitted: HTTPS,
//! HTTP/2, uploads that persist, cookies, and XML-RPC's `system.multicall`.

use std::io;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{json, Map, Value as JsonValue};
use tokio::net::TcpStream;
use tokio_io_timeout::TimeoutStream;

use super::clock::{self, Utc};
use super::{Context, Service};

mod xmlrpc;

/// The largest request body read: XML-RPC calls and echoed bodies of a lesson are a few KiB.
pub const MAX_BODY: usize = 64 * 1024;
/// Bodies a little over [`MAX_BODY`] are still read (and discarded) before the 413, so that the client, which
/// is still sending, reads the reply instead of a connection reset; past this the connection is just closed.
const MAX_DRAIN: usize = 1024 * 1024;
/// The most bytes of request line and headers: browsers send under 8 KiB.
pub const MAX_HEADERS: usize = 16 * 1024;

/// Serves one HTTP/1.1 connection (keep-alive included) until the client closes or goes quiet.
pub async fn serve(socket: TcpStream, context: Context) -> io::Result<()> {
    let idle = context.idle_timeout;
    // Every read and write of the connection times out, which bounds keep-alive waits, bodies and clients
    // that stop reading; hyper's header timeout also bounds headers sent a byte at a time.
    let mut stream = TimeoutStream::new(socket);
    stream.set_read_timeout(Some(idle));
    stream.set_write_timeout(Some(idle));
    let service = TowerToHyperService::new(router());
    http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .max_header_size(MAX_HEADERS)
        .serve_connection(TokioIo::new(Box::pin(stream)), service)
        .await
        .map_err(io::Error::other)
}

fn router() -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/hello.txt", get(|| async { HELLO }))
        .route("/links.html", get(|| async { Html(LINKS) }))
        .route("/table.html", get(|| async { Html(table_page()) }))
        .route("/api/time", get(api_time))
        .route("/api/echo", any(api_echo))
        .route("/api/quotes", get(api_quotes))
        .route("/api/quotes/{id}", get(api_quote))
        .route("/status/{code}", any(status))
        .route("/redirect", get(redirect))
        .route("/RPC2", post(xmlrpc))
        .fallback(not_found)
}

const INDEX: &str = r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>The Soket lab</title></head>
<body>
<h1>Welcome to the lab's web server</h1>
<p>Everything here is small on purpose: read it with a socket, http.client, urllib or curl.</p>
<ul>
<li><a href="/hello.txt">hello.txt</a>: plain text</li>
<li><a href="/links.html">links.html</a>: a page full of links to extract</li>
<li><a href="/table.html">table.html</a>: a table of the lab's services to parse</li>
<li><a href="/api/time">/api/time</a>: the time as JSON</li>
<li><a href="/api/echo?name=lab">/api/echo</a>: your request, echoed back as JSON (try POST)</li>
<li><a href="/api/quotes">/api/quotes</a>: quotations as JSON; <a href="/api/quotes/1">/api/quotes/1</a> is one</li>
<li><a href="/status/404">/status/404</a>: any status code you ask for</li>
<li><a href="/redirect">/redirect</a>: a redirect to hello.txt</li>
<li>/RPC2: XML-RPC; try <code>xmlrpc.client.ServerProxy("http://lab/RPC2").system.listMethods()</code></li>
</ul>
</body>
</html>
"#;

const HELLO: &str = "Hello from the lab!\n\
This text came to you over HTTP: a request line, some headers, a blank line, and then this body.\n";

const LINKS: &str = r##"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Links to follow</title></head>
<body>
<h1>Links to follow</h1>
<p>Find every <code>href</code> on this page. Some are relative, some absolute, one points inside the page.</p>
<ul>
<li><a href="/">The index</a></li>
<li><a href="hello.txt">A relative link to hello.txt</a></li>
<li><a href="http://www.lab/api/time">An absolute link to the time</a></li>
<li><a href="/api/quotes/2">The second quotation</a></li>
<li><a href="gopher://gopher.lab/">The lab's Gopher server</a></li>
<li><a href="mailto:learner@lab">Mail to the learner</a></li>
<li><a href="#bottom">The bottom of this page</a></li>
</ul>
<p id="bottom">That was all of them: seven links.</p>
</body>
</html>
"##;

/// The services table, from the lab's own list so that it stays true.
fn table_page() -> String {
    let rows: String = Service::ALL
        .iter()
        .map(|s| format!("<tr><td>{}</td><td>{}</td></tr>\n", s.name(), s.port()))
        .collect();
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>The lab's services</title></head>
<body>
<h1>The lab's services</h1>
<table>
<tr><th>service</th><th>port</th></tr>
{rows}</table>
</body>
</html>
"#
    )
}

/// Quotations: (author, text).
const QUOTES: [(&str, &str); 5] = [
    (
        "Jon Postel, RFC 761",
        "Be conservative in what you do, be liberal in what you accept from others.",
    ),
    (
        "David Clark",
        "We reject kings, presidents and voting. We believe in rough consensus and running code.",
    ),
    (
        "Phil Karlton",
        "There are only two hard things in Computer Science: cache invalidation and naming things.",
    ),
    (
        "Leslie Lamport",
        "A distributed system is one in which the failure of a computer you didn't even know existed \
         can render your own computer unusable.",
    ),
    (
        "John Gilmore",
        "The Net interprets censorship as damage and routes around it.",
    ),
];

fn quote_json(id: usize) -> Option<JsonValue> {
    let (author, text) = QUOTES.get(id.checked_sub(1)?)?;
    Some(json!({"id": id, "author": author, "text": text}))
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

async fn api_time() -> Json<JsonValue> {
    let unix = clock::unix_now();
    Json(json!({"unix": unix, "iso": Utc::from_unix(unix).iso8601()}))
}

async fn api_quotes() -> Json<JsonValue> {
    Json((1..=QUOTES.len()).filter_map(quote_json).collect())
}

async fn api_quote(Path(id): Path<String>) -> Response {
    match id.parse().ok().and_then(quote_json) {
        Some(quote) => Json(quote).into_response(),
        None => json_error(
            StatusCode::NOT_FOUND,
            &format!("no quote {id:?}: ids go from 1 to {}", QUOTES.len()),
        ),
    }
}

async fn api_echo(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(&parts.headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let mut headers = Map::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        // A repeated header becomes one, comma-joined, as RFC 9110 5.3 allows.
        match headers.get_mut(name.as_str()) {
            Some(JsonValue::String(joined)) => *joined = format!("{joined}, {value}"),
            _ => drop(headers.insert(name.to_string(), value.into())),
        }
    }
    let query = parts.uri.query();
    let mut args = Map::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match args.get_mut(key.as_ref()) {
            Some(JsonValue::Array(values)) => values.push(value.into()),
            Some(first) => *first = json!([first.take(), value]),
            None => drop(args.insert(key.into_owned(), value.into())),
        }
    }
    Json(json!({
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": query,
        "args": args,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "body_length": body.len(),
    }))
    .into_response()
}

/// Reads a request body of at most [`MAX_BODY`] bytes, or gives the 413 to answer. A client that stops
/// sending is cut by the connection's read timeout.
async fn read_body(headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let too_large = || {
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is over {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_DRAIN) {
        return Err(too_large());
    }
    let mut chunks = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0;
    while let Some(chunk) = chunks.next().await {
        let chunk =
            chunk.map_err(|_| json_error(StatusCode::BAD_REQUEST, "the body could not be read"))?;
        seen += chunk.len();
        if seen > MAX_DRAIN {
            return Err(too_large());
        }
        if seen <= MAX_BODY {
            bytes.extend_from_slice(&chunk);
        }
    }
    if seen > MAX_BODY {
        return Err(too_large());
    }
    Ok(bytes.into())
}

async fn status(Path(code): Path<String>) -> Response {
    let Some(status) = code
        .parse::<u16>()
        .ok()
        .filter(|c| (200..=599).contains(c))
        .and_then(|c| StatusCode::from_u16(c).ok())
    else {
        return json_error(
            StatusCode::BAD_REQUEST,
            "the status must be a number from 200 to 599",
        );
    };
    // These two may carry no body at all (RFC 9110 15.3.5, 15.4.5).
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return status.into_response();
    }
    let reason = status.canonical_reason().unwrap_or("");
    (status, format!("{} {reason}\n", status.as_u16())).into_response()
}

async fn redirect() -> Response {
    (
        StatusCode::FOUND,
        [(LOCATION, "/hello.txt")],
        "Found: this moved to /hello.txt\n",
    )
        .into_response()
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path();
    let message = format!("there is no {path} on the lab's web server; / lists what there is");
    if path.starts_with("/api/") {
        json_error(StatusCode::NOT_FOUND, &message)
    } else {
        (StatusCode::NOT_FOUND, format!("404 Not Found: {message}\n")).into_response()
    }
}

async fn xmlrpc(request: Request) -> Response {
    let (parts, body) = request.into_parts();
    match read_body(&parts.headers, body).await {
        Ok(body) => ([(CONTENT_TYPE, "text/xml")], xmlrpc::respond(&body)).into_response(),
        Err(response) => response,
    }
}
