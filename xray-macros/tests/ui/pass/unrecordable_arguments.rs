/// Neither Serialize nor Debug: recorded as a note, never a compile error.
struct Connection;

#[derive(Debug)]
struct Settings {
    retries: u8,
}

#[xray::step(step_type = "retrieve")]
fn fetch(conn: &Connection, settings: Settings, query: &str) -> Connection {
    let _ = (conn, settings.retries, query);
    Connection
}

#[xray::step(step_type = "retrieve", skip(conn), skip_all)]
fn fetch_quietly(conn: Connection) -> usize {
    let _ = conn;
    0
}

fn main() {
    let _guard = xray::init(xray::Config::builder().offline_mode(xray::OfflineMode::Silent).build());
    let _ = fetch(&Connection, Settings { retries: 3 }, "q");
    assert_eq!(fetch_quietly(Connection), 0);
}
