//! PostgreSQL going away under a running server, through a TCP proxy the test cuts: `/health`
//! answers 503 at once (a load balancer's 2 s probe sees an answer, not a hang), API requests
//! fail fast with 503 and `Retry-After` instead of holding a worker for the pool's 30 s, and
//! everything works again by itself once the database is back, with nothing stored before lost.
//! And a database that is not there at all yet is created at start-up, or said to be missing.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xray_server::db::DatabaseUrl;
use xray_server::testing::{Backend, TestDb, TestServer};

/// How long an answer may take while the database is away. The server's own bounds are 0.8 s
/// for `/health` and 0.25 s for other requests; the margin is for a loaded test machine. Before
/// the fix every request took the pool's 30 s checkout timeout.
const FAST: Duration = Duration::from_secs(2);

/// A TCP proxy to PostgreSQL: `cut` closes every open connection and refuses new ones (each is
/// accepted and closed at once), `restore` forwards again.
struct Proxy {
    addr: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if c.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let mut sockets = o.lock().expect("proxy lock");
                for s in [&client, &server] {
                    sockets.push(s.try_clone().expect("clone a socket"));
                }
                pipe(&client, &server);
                pipe(&server, &client);
            }
        });
        Proxy { addr, cut, open }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().expect("proxy lock").drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` into `to` on a thread of its own until either side closes.
fn pipe(from: &TcpStream, to: &TcpStream) {
    let (mut from, mut to) = (
        from.try_clone().expect("clone"),
        to.try_clone().expect("clone"),
    );
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
    });
}

/// The test database's URL with its host and port replaced by the proxy's, and the upstream
/// host and port.
fn through_proxy(db: &TestDb) -> (String, impl FnOnce(&str) -> DatabaseUrl) {
    let url = db.url_string();
    let (base, name) = url.rsplit_once('/').expect("a database name");
    let (user, upstream) = base.rsplit_once('@').expect("a user@host URL");
    let (user, name) = (user.to_string(), name.to_string());
    (upstream.to_string(), move |proxy: &str| {
        DatabaseUrl::Postgres(format!("{user}@{proxy}/{name}"))
    })
}

/// (status, `Retry-After`, JSON body, time taken).
fn request(
    method: &str,
    url: &str,
    body: Option<&Value>,
) -> (u16, Option<String>, Value, Duration) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let started = Instant::now();
    let result = match body {
        Some(b) => agent.post(url).send_json(b),
        None if method == "HEAD" => agent.head(url).call(),
        None => agent.get(url).call(),
    };
    let mut res = result.expect("the server answers");
    let took = started.elapsed();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = res.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (res.status().as_u16(), retry_after, json, took)
}

fn run(run_id: &str) -> Value {
    json!({"run_id": run_id, "pipeline": "outage", "status": "completed",
           "started_at": "2026-12-07T12:00:00Z", "steps": [
               {"name": "filter", "step_type": "filter", "input_count": 10, "output_count": 4,
                "rejections": {"price_too_high": {"count": 6}}}]})
}

#[test]
fn an_unreachable_postgres_is_a_fast_503_and_the_server_recovers_by_itself() {
    let db = TestDb::create(Backend::Postgres);
    let (upstream, proxied) = through_proxy(&db);
    let proxy = Proxy::start(upstream);
    let server = TestServer::start_url(&proxied(&proxy.addr), 16 * 1024 * 1024);

    assert_eq!(
        request("POST", &server.at("/runs"), Some(&run("before"))).0,
        201
    );
    assert_eq!(request("GET", &server.at("/health"), None).0, 200);

    proxy.cut();
    let (status, retry_after, body, took) = request("GET", &server.at("/health"), None);
    assert_eq!(status, 503, "{body}");
    assert!(took < FAST, "/health took {took:?} with the database away");
    assert_eq!(body["code"], "unavailable");
    assert!(
        body["error"].as_str().unwrap_or("").contains("unreachable"),
        "says why: {body}"
    );
    assert_eq!(retry_after.as_deref(), Some("1"));
    let (status, _, _, took) = request("HEAD", &server.at("/health"), None);
    assert_eq!(status, 503);
    assert!(took < FAST, "HEAD /health took {took:?}");
    // Every request fails fast, not just the first: none waits for a connection.
    for i in 0..5 {
        for (method, path, body) in [
            (
                "POST",
                "/runs".to_string(),
                Some(run(&format!("during_{i}"))),
            ),
            ("GET", "/runs/before".to_string(), None),
            ("GET", "/steps?step_type=filter".to_string(), None),
        ] {
            let (status, retry_after, answer, took) =
                request(method, &server.at(&path), body.as_ref());
            assert_eq!(status, 503, "{method} {path}: {answer}");
            assert_eq!(retry_after.as_deref(), Some("1"), "{method} {path}");
            assert!(took < FAST, "{method} {path} took {took:?}");
        }
    }

    // Back by itself: no restart, no request needed to wake it.
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    while request("GET", &server.at("/health"), None).0 != 200 {
        assert!(
            Instant::now() < deadline,
            "still unhealthy 20 s after the database came back"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        request("POST", &server.at("/runs"), Some(&run("after"))).0,
        201
    );
    for id in ["before", "after"] {
        let (status, _, body, _) = request("GET", &server.at(&format!("/runs/{id}")), None);
        assert_eq!((status, body["run_id"].as_str()), (200, Some(id)), "{body}");
    }
    drop(server);
    drop(db);
}

/// A statement run on the PostgreSQL admin database when the test ends, however it ends (the
/// `DROP` of what the test made).
struct AtEnd(String);

impl Drop for AtEnd {
    fn drop(&mut self) {
        use diesel::{Connection, RunQueryDsl};
        // Quietly: a panic here, while a failed test unwinds, would abort the whole binary.
        let admin = xray_server::testing::postgres_admin_url();
        if let Ok(mut conn) = diesel::PgConnection::establish(&admin) {
            let _ = diesel::sql_query(&self.0).execute(&mut conn);
        }
    }
}

/// A PostgreSQL URL naming a database the server does not have yet (the README's
/// `DATABASE_URL=postgres://…/xray` on a fresh server): the database is created at start-up and
/// the server serves, instead of waiting 30 s to fail with `database "xray" does not exist`.
#[test]
fn a_missing_postgres_database_is_created_at_start() {
    let admin = xray_server::testing::postgres_admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    // Upper case and a space: the name is quoted, not folded or split.
    let name = format!("X-Ray missing {}", uuid::Uuid::new_v4().simple());
    let created = AtEnd(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    let encoded = name.replace(' ', "%20");
    let url = DatabaseUrl::Postgres(format!("{base}/{encoded}"));

    let started = Instant::now();
    let server = TestServer::start_url(&url, 1024 * 1024);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (status, _, body, _) = request("POST", &server.at("/runs"), Some(&run("made")));
    assert_eq!(status, 201, "{body}");
    let (status, _, body, _) = request("GET", &server.at("/runs/made"), None);
    assert_eq!(
        (status, &body["status"]),
        (200, &json!("completed")),
        "{body}"
    );

    // A second server on the same URL finds it there and starts as usual.
    let second = TestServer::start_url(&url, 1024 * 1024);
    let (status, _, body, _) = request("GET", &second.at("/runs/made"), None);
    assert_eq!(status, 200, "{body}");
    drop((server, second));
    drop(created);
}

/// The same with a role that may not create databases: the server stops at once, saying what to
/// do, rather than waiting for a database that will not come.
#[test]
fn a_missing_database_that_cannot_be_created_stops_the_server_at_once_saying_why() {
    let admin = xray_server::testing::postgres_admin_url();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let role = format!("xray_no_createdb_{id}");
    xray_server::testing::exec(
        &DatabaseUrl::Postgres(admin.clone()),
        &format!("CREATE ROLE {role} LOGIN NOCREATEDB"),
    );
    let _dropped = AtEnd(format!("DROP ROLE IF EXISTS {role}"));
    let (scheme, rest) = admin.split_once("://").expect("a URL");
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = host.split_once('/').map_or(host, |(h, _)| h);
    let name = format!("xray_not_made_{id}");
    let url = DatabaseUrl::Postgres(format!("{scheme}://{role}@{host}/{name}"));

    let started = Instant::now();
    let err = match xray_server::db::Db::connect(&url, 2) {
        Ok(_) => panic!("connected to a database that does not exist"),
        Err(e) => e.to_string(),
    };
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains(&format!("`{name}` does not exist and could not be created"))
            && err.contains("permission denied")
            && err.contains(&format!("createdb {name}")),
        "{err}"
    );
}
