//! A real HTTP/1.1 listener on 127.0.0.1:0 recording every request (method, path, headers,
//! body), for notifiers and the audit webhook to deliver to. It can answer 500 to its first N
//! requests, to prove retries. One connection per request (`Connection: close`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request as the sink read it.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    /// Names lowercased, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

struct Shared {
    requests: Mutex<Vec<Request>>,
    arrived: Condvar,
    /// Requests still to answer with 500.
    failures: AtomicUsize,
    stop: AtomicBool,
}

pub(crate) struct HttpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl HttpSink {
    /// A sink answering 200 to everything.
    pub(crate) fn start() -> Self {
        Self::failing_first(0)
    }

    /// A sink answering 500 to its first `n` requests, 200 after.
    pub(crate) fn failing_first(n: usize) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the HTTP sink");
        let addr = listener.local_addr().expect("the HTTP sink's address");
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            arrived: Condvar::new(),
            failures: AtomicUsize::new(n),
            stop: AtomicBool::new(false),
        });
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let serving = accepting.clone();
                std::thread::spawn(move || serve(stream, &serving));
            }
        });
        HttpSink { addr, shared }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub(crate) fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The requests to `path` once there are at least `n`, waiting up to 30 s (a safety net).
    pub(crate) fn wait_for(&self, path: &str, n: usize) -> Vec<Request> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut requests = self.shared.requests.lock().unwrap();
        loop {
            let matching: Vec<Request> = requests
                .iter()
                .filter(|r| r.path == path)
                .cloned()
                .collect();
            if matching.len() >= n {
                return matching;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{n} request(s) to {path} never came; got {:#?}",
                *requests
            );
            requests = self.shared.arrived.wait_timeout(requests, left).unwrap().0;
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(length) = find("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
    } else if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            if reader.read_line(&mut size).unwrap_or(0) == 0 {
                return;
            }
            let size =
                usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16).unwrap_or(0);
            let mut chunk = vec![0; size + 2];
            if reader.read_exact(&mut chunk).is_err() {
                return;
            }
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    }
    let fail = shared
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    shared.requests.lock().unwrap().push(Request {
        method,
        path,
        headers,
        body,
    });
    shared.arrived.notify_all();
    let status = if fail {
        "500 Internal Server Error"
    } else {
        "200 OK"
    };
    let _ = write!(
        writer,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = writer.flush();
}

/// A loopback port nothing listens on (bound, then closed): a notifier pointing there is dead.
pub(crate) fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    listener.local_addr().expect("its address").port()
}
