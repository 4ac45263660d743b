//! One file over HTTP into place, the way a user expects of a large download: a progress bar;
//! what arrived kept in `FILE.part` and resumed with a range request after an interruption (in
//! the same run, a few times with back-off, and in the next run); the proxy of the environment
//! (`all_proxy`, `https_proxy` or `http_proxy`, except for `no_proxy`'s hosts); connect and read timeouts; the SHA-256 computed,
//! checked against a pin when given, and the file renamed into place only when whole and right.
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use ureq::Agent;
use ureq::http::{HeaderMap, StatusCode, header};

use crate::{Error, Result};

/// What to fetch and how patiently.
#[derive(Debug, Clone)]
pub struct Download<'a> {
    pub url: &'a str,
    /// Where the whole file lands; `DEST.part` holds it while it arrives.
    pub dest: &'a Path,
    /// The SHA-256 the file must have (64 hex digits), e.g. from `--sha256`.
    pub sha256: Option<&'a str>,
    /// Seconds to connect, and to wait for the answer or the next bytes of the body.
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    /// Tries in this run before giving up (what arrived is kept for the next run).
    pub attempts: u32,
    /// Wait before the second try; doubled for each further one, at most 30 s.
    pub retry_delay: Duration,
    /// A progress bar and notes on stderr.
    pub progress: bool,
}

impl<'a> Download<'a> {
    pub fn new(url: &'a str, dest: &'a Path) -> Self {
        Self {
            url,
            dest,
            sha256: None,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            attempts: 5,
            retry_delay: Duration::from_secs(1),
            progress: true,
        }
    }
}

/// A file in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    pub sha256: String,
    pub bytes: u64,
    /// Where the first resumed transfer started (0: none was resumed).
    pub resumed_from: u64,
}

/// `DEST.part`: the bytes that arrived so far.
pub fn part_path(dest: &Path) -> PathBuf {
    suffixed(dest, ".part")
}

/// `DEST.part.validator`: the server's ETag or Last-Modified for the bytes in `DEST.part`, sent
/// back as `If-Range` so that a file changed on the server restarts instead of being spliced.
fn validator_path(dest: &Path) -> PathBuf {
    suffixed(dest, ".part.validator")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(suffix);
    PathBuf::from(s)
}

/// Checks a pinned SHA-256 and returns it in lowercase.
pub fn parse_sha256(text: &str) -> Result<String> {
    let t = text.trim().to_ascii_lowercase();
    if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(t)
    } else {
        Err(Error::Invalid(format!("--sha256 {text:?}: a SHA-256 is 64 hexadecimal digits")))
    }
}

/// SHA-256 of a file, read in pieces.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|e| Error::io(path, "cannot read it", e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, "cannot read it", e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// What one try ended with.
enum Try {
    /// `DEST.part` holds the whole file.
    Complete,
    /// Worth another try (resuming from what is in `DEST.part`): why this one failed.
    Again(String),
}

/// Fetches `d.url` into `d.dest`. On failure `d.dest` is untouched; `DEST.part` keeps what
/// arrived unless it cannot be right (a refused address, a wrong SHA-256).
pub fn download(d: &Download) -> Result<Downloaded> {
    let pinned = d.sha256.map(parse_sha256).transpose()?;
    if let Some(dir) = d.dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "cannot create this folder", e))?;
    }
    let part = part_path(d.dest);
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(d.connect_timeout))
        .timeout_recv_response(Some(d.read_timeout))
        .timeout_per_read(Some(d.read_timeout))
        .user_agent(concat!("cyclegan-edge/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut resumed_from = 0;
    let bar = if d.progress { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{bytes}/{total_bytes} {wide_bar} {bytes_per_sec} {eta}")
            .expect("a valid template"),
    );
    let note = |text: String| {
        if d.progress {
            bar.suspend(|| eprintln!("{text}"));
        }
    };
    note(format!("downloading {} to {}", d.url, d.dest.display()));
    let mut attempt = 1;
    loop {
        match try_once(&agent, d, &part, &bar, &note, &mut resumed_from)? {
            Try::Complete => break,
            Try::Again(why) if attempt >= d.attempts => {
                bar.abandon();
                return Err(Error::GaveUp { url: d.url.into(), attempts: attempt, last: why, part });
            }
            Try::Again(why) => {
                let wait = d.retry_delay.saturating_mul(1 << (attempt - 1).min(5)).min(Duration::from_secs(30));
                note(format!("{why}; trying again in {:.0?} (try {} of {})", wait, attempt + 1, d.attempts));
                std::thread::sleep(wait);
                attempt += 1;
            }
        }
    }
    bar.finish_and_clear();
    let sha256 = sha256_file(&part)?;
    if let Some(expected) = pinned
        && expected != sha256
    {
        remove_part(d.dest);
        return Err(Error::Sha256Mismatch { url: d.url.into(), expected, actual: sha256 });
    }
    let bytes = file_len(&part);
    std::fs::rename(&part, d.dest).map_err(|e| Error::io(d.dest, "cannot move the download into place", e))?;
    if let Some(dir) = d.dest.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = File::open(dir)
    {
        let _ = dir.sync_all();
    }
    let _ = std::fs::remove_file(validator_path(d.dest));
    note(format!("{}: {bytes} bytes, sha256 {sha256}", d.dest.display()));
    Ok(Downloaded { sha256, bytes, resumed_from })
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn remove_part(dest: &Path) {
    let _ = std::fs::remove_file(part_path(dest));
    let _ = std::fs::remove_file(validator_path(dest));
}

/// `bytes START-END/TOTAL` (or `bytes */TOTAL`): the start (if any) and the total (if known).
fn content_range(headers: &HeaderMap) -> (Option<u64>, Option<u64>) {
    let Some(value) = headers.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    let Some((range, total)) = value.trim().strip_prefix("bytes ").and_then(|r| r.split_once('/')) else {
        return (None, None);
    };
    let start = range.split_once('-').and_then(|(s, _)| s.trim().parse().ok());
    (start, total.trim().parse().ok())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// A strong ETag, else Last-Modified: what `If-Range` may carry.
fn validator(headers: &HeaderMap) -> Option<String> {
    let etag = headers.get(header::ETAG).and_then(|v| v.to_str().ok()).filter(|e| !e.starts_with("W/"));
    etag.or_else(|| headers.get(header::LAST_MODIFIED).and_then(|v| v.to_str().ok())).map(str::to_string)
}

fn hint_for(error: &ureq::Error) -> &'static str {
    match error {
        ureq::Error::HostNotFound => {
            " (check the address, the network and the proxy settings: http_proxy, https_proxy)"
        }
        ureq::Error::BadUri(_) => " (give a full address such as http://host/path/file)",
        _ => "",
    }
}

fn transient(error: &ureq::Error) -> bool {
    matches!(
        error,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// One request: what `part` lacks, appended to it. `resumed_from` is set at the first resumed transfer.
fn try_once(
    agent: &Agent,
    d: &Download,
    part: &Path,
    bar: &ProgressBar,
    note: &dyn Fn(String),
    resumed_from: &mut u64,
) -> Result<Try> {
    let mut offset = file_len(part);
    let mut request = agent.get(d.url);
    if offset > 0 {
        request = request.header(header::RANGE, format!("bytes={offset}-"));
        if let Ok(v) = std::fs::read_to_string(validator_path(d.dest)) {
            request = request.header(header::IF_RANGE, v.trim());
        }
    }
    let response = match request.call() {
        Ok(r) => r,
        Err(e) if transient(&e) => return Ok(Try::Again(e.to_string())),
        Err(source) => {
            let hint = hint_for(&source);
            return Err(Error::Http { url: d.url.into(), source, hint });
        }
    };
    let status = response.status();
    let headers = response.headers().clone();
    let total = match status {
        StatusCode::OK => {
            if offset > 0 {
                note(format!(
                    "the server sent the whole file again instead of the rest: starting over from 0 (had {offset} bytes)"
                ));
                offset = 0;
            }
            if let Some(v) = validator(&headers) {
                std::fs::write(validator_path(d.dest), v)
                    .map_err(|e| Error::io(validator_path(d.dest), "cannot write it", e))?;
            }
            content_length(&headers)
        }
        StatusCode::PARTIAL_CONTENT => match content_range(&headers) {
            (Some(start), total) if start == offset => {
                note(format!("resuming at {offset} bytes"));
                if *resumed_from == 0 {
                    *resumed_from = offset;
                }
                total
            }
            _ => {
                remove_part(d.dest);
                return Ok(Try::Again("the server sent another range than the one asked for".into()));
            }
        },
        StatusCode::RANGE_NOT_SATISFIABLE => {
            return Ok(match content_range(&headers).1 {
                Some(total) if total == offset => Try::Complete,
                _ => {
                    remove_part(d.dest);
                    Try::Again("the part already fetched does not fit the file on the server".into())
                }
            });
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS || s == StatusCode::REQUEST_TIMEOUT => {
            return Ok(Try::Again(format!("the server answered {s}")));
        }
        s => {
            remove_part(d.dest);
            let hint = match s {
                StatusCode::NOT_FOUND | StatusCode::GONE => {
                    ": nothing is at this address; check the name, or give the file's address with --url"
                }
                StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => ": the server refuses this file to us",
                _ => "",
            };
            return Err(Error::Status { url: d.url.into(), status: s.as_u16(), hint });
        }
    };
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(offset == 0)
        .open(part)
        .map_err(|e| Error::io(part, "cannot write the download here (is the folder writable?)", e))?;
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(part, "cannot write it", e))?;
    bar.set_length(total.unwrap_or(0));
    bar.set_position(offset);
    let mut body = response.into_body().into_reader();
    let mut buf = vec![0u8; 1 << 16];
    let mut at = offset;
    let cut = loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break Some(e.to_string()),
        };
        file.write_all(&buf[..n]).map_err(|e| {
            let why = if e.kind() == ErrorKind::StorageFull {
                "the disk is full: free some space (or point --cache-dir/CYCLEGAN_CACHE_DIR elsewhere) and run again to resume"
            } else {
                "cannot write the download"
            };
            Error::io(part, why, e)
        })?;
        at += n as u64;
        bar.set_position(at);
    };
    file.sync_all().map_err(|e| Error::io(part, "cannot write the download", e))?;
    match (cut, total) {
        (Some(why), _) => Ok(Try::Again(format!("the transfer broke off after {at} bytes: {why}"))),
        (None, Some(total)) if at < total => {
            Ok(Try::Again(format!("the server closed the connection after {at} of {total} bytes")))
        }
        (None, Some(total)) if at > total => {
            remove_part(d.dest);
            Ok(Try::Again(format!("the server sent {at} bytes of a {total}-byte file")))
        }
        (None, _) => Ok(Try::Complete),
    }
}
