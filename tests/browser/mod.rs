//! A real headless browser for the web UI tests: Debian's chromium driven through chromedriver
//! (WebDriver, via fantoccini). Each [`Browser`] starts its own chromedriver on a free port, in a
//! process group of its own, and kills that group (chromedriver and the chromium it started)
//! when dropped, even when the test fails half-way.
//!
//! A missing chromium or chromedriver fails the test with what to install: `scripts/test`
//! installs both.
// Each test binary uses only some of the helpers.
#![allow(dead_code)]

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The chromium binary (Debian's package).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The WebDriver server for it (Debian's `chromium-driver`).
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long a wait for something on the page lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);

/// A browser session and the chromedriver behind it.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Driver,
    _profile: tempfile::TempDir,
}

/// The chromedriver process group, killed on drop.
struct Driver {
    child: Child,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole group: chromedriver and the chromium processes it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port for chromedriver")
}

impl Browser {
    /// Starts chromedriver and a headless chromium window of `width` × `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(path).exists(),
                "{path} is missing: the web UI tests need Debian's `{package}` \
                 (run scripts/test, or apt-get install -y chromium chromium-driver)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"));
        let driver = Driver { child };
        let url = format!("http://127.0.0.1:{port}");
        let profile = tempfile::tempdir().expect("a temporary browser profile");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!("a JSON object")
        };
        let started = Instant::now();
        let client = loop {
            let attempt =
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(caps.clone())
                    .connect(&url)
                    .await;
            match attempt {
                Ok(client) => break client,
                Err(e) if started.elapsed() < Duration::from_secs(20) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot open a chromium session through {CHROMEDRIVER}: {e}"),
            }
        };
        let browser = Browser {
            client,
            driver,
            _profile: profile,
        };
        browser
            .client
            .set_window_size(width, height)
            .await
            .expect("size the window");
        browser
    }

    /// Opens `url` and waits for the view to be drawn.
    pub async fn open(&self, url: &str) {
        // Each page load starts a new error list: check the one that is ending first.
        if self
            .client
            .current_url()
            .await
            .is_ok_and(|u| u.scheme() == "http")
        {
            self.assert_no_script_errors().await;
        }
        self.client.goto(url).await.expect("navigate");
        self.wait_js("return document.body.dataset.ready !== undefined && !document.querySelector('#view > .loading')", "the page to load").await;
    }

    /// Runs `script` (a function body) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `script` returns true.
    pub async fn wait_js(&self, script: &str, what: &str) {
        let started = Instant::now();
        loop {
            if self.js(script).await == Value::Bool(true) {
                return;
            }
            if started.elapsed() > WAIT {
                panic!(
                    "waited {WAIT:?} for {what}; the page shows:\n{}",
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the view.
    pub async fn page_text(&self) -> String {
        match self.client.find(Locator::Css("#view")).await {
            Ok(el) => el.text().await.unwrap_or_default(),
            Err(e) => format!("(no view: {e})"),
        }
    }

    /// Waits for an element matching `css` whose text contains `text` (any element when empty).
    pub async fn wait_for(&self, css: &str, text: &str) -> Element {
        retry(WAIT, || async {
            for el in self.client.find_all(Locator::Css(css)).await.ok()? {
                if text.is_empty() || el.text().await.ok()?.contains(text) {
                    return Some(el);
                }
            }
            None
        })
        .await
        .unwrap_or_else(|| panic!("no `{css}` containing {text:?} appeared"))
    }

    /// Every element matching `css`, now.
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find `{css}`: {e}"))
    }

    /// The texts of every element matching `css`, now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = Vec::new();
        for el in self.all(css).await {
            out.push(text_of(&el).await);
        }
        out
    }

    /// The one element matching `css`.
    pub async fn one(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}`: {e}"))
    }

    /// Clicks the one element matching `css`.
    pub async fn click(&self, css: &str) {
        self.one(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Types `text` into the one element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.one(css)
            .await
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// Picks the option of value `value` in the one `<select>` matching `css`.
    pub async fn select(&self, css: &str, value: &str) {
        self.one(css)
            .await
            .select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("select {value:?} in `{css}`: {e}"));
    }

    /// The text of the one element matching `css`, now.
    pub async fn text(&self, css: &str) -> String {
        text_of(&self.one(css).await).await
    }

    /// Waits as [`Browser::wait_for`] does and returns the element's text.
    pub async fn wait_text(&self, css: &str, text: &str) -> String {
        text_of(&self.wait_for(css, text).await).await
    }

    /// The page's fragment route (`#/runs/…`).
    pub async fn hash(&self) -> String {
        self.js("return location.hash")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Saves a PNG of the window as `name.png` under the test's target directory, and under
    /// `docs/screenshots/` too when `XRAY_UPDATE_SCREENSHOTS` is set. Returns its bytes.
    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        // Let fonts and layout settle.
        self.js("return document.fonts.status").await;
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
        if std::env::var_os("XRAY_UPDATE_SCREENSHOTS").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
            std::fs::create_dir_all(&docs).expect("docs/screenshots");
            std::fs::write(docs.join(format!("{name}.png")), &png).expect("write screenshot");
        }
        png
    }

    /// Fails the test if the page has thrown a script error since it was loaded.
    pub async fn assert_no_script_errors(&self) {
        let errors = self
            .js("return window.__xrayErrors || ['the UI script did not start']")
            .await;
        assert_eq!(
            errors,
            serde_json::json!([]),
            "script errors on {}",
            self.hash().await
        );
    }

    /// Ends the session (chromedriver closes chromium), then the driver.
    pub async fn close(self) {
        let Browser {
            client,
            driver,
            _profile,
        } = self;
        let _ = client.close().await;
        drop(driver);
    }
}

/// The visible text of `el`.
pub async fn text_of(el: &Element) -> String {
    el.text().await.expect("element text")
}

/// Calls `f` until it gives `Some`, for at most `limit`.
pub async fn retry<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if started.elapsed() > limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A tokio runtime for one test's browser session.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
