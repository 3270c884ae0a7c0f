//! A real browser for the tests of pages: headless Chromium, driven over WebDriver
//! (chromedriver, Debian's `chromium-driver`). Each test gets its own chromedriver and
//! browser profile, killed when the test ends.
//!
//! Without chromedriver on PATH the browser tests fail under CI (`CI=true`, where `.ci/run`
//! installs it) and are skipped, loudly, elsewhere.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

/// A browser window of the given width, and the chromedriver behind it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// Where the browser saves what it downloads.
    downloads: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver takes its Chromium down with it.
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// A headless Chromium whose window is `width` CSS pixels wide; `None` (after saying
    /// why) when chromedriver is not installed and this is not CI.
    pub async fn open(width: u32) -> Option<Browser> {
        let port = free_port();
        let driver = match Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(driver) => driver,
            Err(error) => {
                assert!(
                    std::env::var("CI").is_err(),
                    "chromedriver is needed for the browser tests in CI: {error}"
                );
                eprintln!("SKIPPED: no chromedriver on PATH ({error}); install chromium and chromium-driver");
                return None;
            }
        };
        let downloads = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-dev-shm-usage",
                    "--disable-gpu",
                    format!("--window-size={width},900"),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        for _ in 0..100 {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    let browser = Browser {
                        client,
                        driver,
                        downloads,
                    };
                    // --window-size sets the outer window; make the page itself that wide.
                    browser.set_viewport_width(width).await;
                    return Some(browser);
                }
                Err(error) => {
                    last_error = Some(error);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("chromedriver did not start: {last_error:?}");
    }

    /// Makes the page `width` CSS pixels wide.
    pub async fn set_width(&self, width: u32) {
        self.set_viewport_width(width).await;
    }

    async fn set_viewport_width(&self, width: u32) {
        let inner: Value = self.script("return window.innerWidth").await;
        let delta = width as i64 - inner.as_i64().unwrap_or(width as i64);
        if delta != 0 {
            let (w, h) = self.client.get_window_size().await.unwrap();
            self.client
                .set_window_size((w as i64 + delta) as u32, h as u32)
                .await
                .unwrap();
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn script(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    pub async fn url(&self) -> url::Url {
        self.client.current_url().await.unwrap()
    }

    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// Clicks the element and waits for the next page to load.
    pub async fn click(&self, css: &str) {
        let before = self.script("return performance.timeOrigin").await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        for _ in 0..100 {
            let now = self
                .client
                .execute("return performance.timeOrigin", vec![])
                .await;
            if now.is_ok_and(|now| now != before)
                && self.script("return document.readyState").await == "complete"
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} loaded no page");
    }

    /// Whether the page is wider than the window (something would scroll sideways).
    pub async fn overflows_sideways(&self) -> bool {
        self.script("return document.documentElement.scrollWidth > window.innerWidth")
            .await
            == true
    }

    /// The computed CSS property of the first element matching `css`.
    pub async fn style(&self, css: &str, property: &str) -> String {
        let script = format!(
            "return getComputedStyle(document.querySelector({css:?})).getPropertyValue({property:?})"
        );
        self.script(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks a link that downloads a file (the page stays) and returns the text of the
    /// file the browser saved as `name`, once it is there whole.
    pub async fn download(&self, css: &str, name: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let path = self.downloads.path().join(name);
        for _ in 0..100 {
            // Chromium writes a `.crdownload` file and renames it when the download ends.
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let present: Vec<_> = std::fs::read_dir(self.downloads.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        panic!("nothing was downloaded as {name}; the folder holds {present:?}");
    }

    /// Saves a PNG of the page as `NAME.png` in `$AUTHLEDGER_SCREENSHOTS`, when that is set:
    /// for a person to look at what the test saw.
    pub async fn screenshot(&self, name: &str) {
        let Ok(dir) = std::env::var("AUTHLEDGER_SCREENSHOTS") else {
            return;
        };
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png).unwrap();
    }

    /// Runs `steps`; if one fails, saves a screenshot and the page's HTML as
    /// `target/browser-failures/NAME.png` and `.html` (named in the failure) before failing.
    pub async fn run(self, name: &str, steps: impl AsyncFnOnce(&Browser)) {
        use futures::FutureExt;
        let outcome = std::panic::AssertUnwindSafe(steps(&self))
            .catch_unwind()
            .await;
        if let Err(panic) = outcome {
            let dir =
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-failures");
            let _ = std::fs::create_dir_all(&dir);
            if let Ok(png) = self.client.screenshot().await {
                let _ = std::fs::write(dir.join(format!("{name}.png")), png);
            }
            if let Ok(html) = self.client.source().await {
                let _ = std::fs::write(dir.join(format!("{name}.html")), html);
            }
            eprintln!(
                "the page at the failure: {}/{name}.png and .html",
                dir.display()
            );
            self.close().await;
            std::panic::resume_unwind(panic);
        }
        self.close().await;
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
