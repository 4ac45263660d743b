//! A local HTTP server for the download tests: Python's own `http.server` serving a folder on
//! 127.0.0.1 (no range requests, like many simple servers), stopped when dropped. Included by
//! path by the tests of the crates that download.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct HttpServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
}

impl HttpServer {
    pub fn serve(python: &Path, dir: &Path) -> Self {
        let mut child = Command::new(python)
            .args(["-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python -m http.server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        // "Serving HTTP on 127.0.0.1 port 40123 (http://127.0.0.1:40123/) ..."
        let port = line.split_whitespace().skip_while(|w| *w != "port").nth(1).expect("the port in its first line");
        Self { child, url: format!("http://127.0.0.1:{port}") }
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}
