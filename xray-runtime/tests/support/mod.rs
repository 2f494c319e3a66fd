//! Test helpers: reading back from a real server, and a fake server that misbehaves on demand.

#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
#[allow(unused_imports)]
pub use xray_server::testing::{Backend, TestDb, TestServer};

/// GET a path of a server, as JSON (panics on a non-200).
pub fn get(server: &str, path: &str) -> Value {
    let mut res = ureq::get(format!("{server}{path}")).call().expect("GET");
    res.body_mut().read_json().expect("JSON")
}

/// All runs of a pipeline on a server.
pub fn runs(server: &str, pipeline: &str) -> Vec<Value> {
    get(server, &format!("/runs?pipeline={pipeline}&limit=1000"))["runs"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A run with its steps.
pub fn run(server: &str, run_id: &str) -> Value {
    get(server, &format!("/runs/{run_id}"))
}

/// A client of `server` in `fail` mode (a delivery problem fails the test where the run ends),
/// with a spool folder of its own and a short batch interval.
pub fn fail_mode_client(server: &TestServer, pipeline: &str) -> (xray::XRay, tempfile::TempDir) {
    let spool = tempfile::tempdir().unwrap();
    let xray = xray::XRay::builder()
        .endpoint(&server.url)
        .offline_mode(xray::OfflineMode::Fail)
        .spool_dir(spool.path())
        .batch_interval(Duration::from_millis(20))
        .client(pipeline);
    (xray, spool)
}

/// An address nothing listens on (bound, then released).
pub fn dead_endpoint() -> (String, std::net::SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    (format!("http://{addr}"), addr)
}

/// A fake server: answers every request with `status` after `delay`, counting requests.
pub struct FaultServer {
    pub url: String,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// What a [`FaultServer`] answers a request body with: a status and a JSON body.
type Answer = dyn Fn(&[u8]) -> (u16, String) + Send + Sync;

impl FaultServer {
    /// Answers every request with `status`, after `delay`.
    pub fn start(status: u16, delay: Duration) -> FaultServer {
        FaultServer::answering(move |_| {
            std::thread::sleep(delay);
            let text = r#"{"code":"unavailable","error":"injected fault"}"#;
            (status, text.to_string())
        })
    }

    /// Answers each request with what `answer` says for its body.
    pub fn answering(
        answer: impl Fn(&[u8]) -> (u16, String) + Send + Sync + 'static,
    ) -> FaultServer {
        let answer: Arc<Answer> = Arc::new(answer);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (count, answer) = (count.clone(), answer.clone());
                        std::thread::spawn(move || serve(stream, &*answer, &count));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FaultServer {
            url,
            requests,
            stop,
        }
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn serve(stream: TcpStream, answer: &Answer, count: &AtomicUsize) {
    let _ = stream.set_nonblocking(false);
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        count.fetch_add(1, Ordering::Relaxed);
        let (status, text) = answer(&body);
        let response = format!(
            "HTTP/1.1 {status} Fault\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
            text.len()
        );
        let mut out = &stream;
        if out.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
