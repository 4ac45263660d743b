//! Downloads against a local HTTP server that misbehaves on purpose: cut connections, no range
//! support, 404, silence. The file's SHA-256 is checked against coreutils' `sha256sum`.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cyclegan_hub::Error;
use cyclegan_hub::download::{Download, download, part_path};

/// How the server answers one path.
#[derive(Clone, Copy, PartialEq)]
enum Behaviour {
    /// 200 or 206 for a range, with an ETag.
    Serve,
    /// The first answer stops after half the body and closes; later ones serve ranges.
    CutOnce,
    /// Every answer stops after a quarter of what it owes.
    CutAlways,
    /// Always 200 with the whole file, whatever the range.
    NoRanges,
    /// Reads the request and never answers.
    Silent,
}

struct Server {
    url: String,
    /// The Range header of each request, in order ("" when none).
    ranges: Arc<Mutex<Vec<String>>>,
}

fn serve(data: Vec<u8>, behaviour: Behaviour) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/file.bin", listener.local_addr().unwrap());
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let seen = ranges.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            answer(stream, &data, behaviour, n, &seen);
        }
    });
    Server { url, ranges }
}

fn answer(mut stream: TcpStream, data: &[u8], behaviour: Behaviour, n: usize, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let (mut path, mut range) = (String::new(), String::new());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap_or(0) > 0 && line.trim_end() != "" {
        if let Some(p) = line.strip_prefix("GET ") {
            path = p.split_whitespace().next().unwrap_or_default().to_string();
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            range = value.trim().to_string();
        }
        line.clear();
    }
    seen.lock().unwrap().push(range.clone());
    if behaviour == Behaviour::Silent {
        std::thread::sleep(Duration::from_secs(5));
        return;
    }
    if path != "/file.bin" {
        let _ = stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let start = range
        .strip_prefix("bytes=")
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|s| s.parse::<usize>().ok())
        .filter(|_| behaviour != Behaviour::NoRanges);
    let (status, body, extra) = match start {
        Some(s) if s >= data.len() => {
            ("416 Range Not Satisfiable", &data[..0], format!("Content-Range: bytes */{}\r\n", data.len()))
        }
        Some(s) => (
            "206 Partial Content",
            &data[s..],
            format!("Content-Range: bytes {s}-{}/{}\r\n", data.len() - 1, data.len()),
        ),
        None => ("200 OK", data, String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nETag: \"v1\"\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    let sent = match behaviour {
        Behaviour::CutOnce if n == 0 => body.len() / 2,
        Behaviour::CutAlways => body.len() / 4,
        _ => body.len(),
    };
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body[..sent]);
}

fn data() -> Vec<u8> {
    (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn sha256sum(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().expect("coreutils' sha256sum");
    String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

fn quick<'a>(url: &'a str, dest: &'a Path) -> Download<'a> {
    Download {
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_millis(500),
        retry_delay: Duration::from_millis(10),
        progress: false,
        ..Download::new(url, dest)
    }
}

#[test]
fn a_whole_file_lands_with_its_sha256_and_nothing_else() {
    let server = serve(data(), Behaviour::Serve);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("sub/file.bin");
    let got = download(&quick(&server.url, &dest)).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data());
    assert_eq!(got.sha256, sha256sum(&dest));
    assert_eq!((got.bytes, got.resumed_from), (data().len() as u64, 0));
    assert_eq!(std::fs::read_dir(dest.parent().unwrap()).unwrap().count(), 1, "no .part or validator left");
    // Pinned to the right value, it lands again.
    let again = dir.path().join("again.bin");
    download(&Download { sha256: Some(&got.sha256.to_uppercase()), ..quick(&server.url, &again) }).unwrap();
}

#[test]
fn a_cut_connection_resumes_with_a_range_in_the_same_run() {
    let server = serve(data(), Behaviour::CutOnce);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    let got = download(&quick(&server.url, &dest)).unwrap();
    assert_eq!(got.sha256, sha256sum(&dest));
    assert_eq!(std::fs::read(&dest).unwrap(), data());
    let ranges = server.ranges.lock().unwrap().clone();
    assert_eq!(ranges, vec![String::new(), format!("bytes={}-", data().len() / 2)]);
    assert_eq!(got.resumed_from as usize, data().len() / 2);
}

#[test]
fn an_interrupted_run_leaves_a_part_that_the_next_run_resumes() {
    let server = serve(data(), Behaviour::CutAlways);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    let err = download(&Download { attempts: 2, ..quick(&server.url, &dest) }).unwrap_err();
    assert!(matches!(err, Error::GaveUp { attempts: 2, .. }), "{err}");
    assert!(err.to_string().contains("resumes"), "{err}");
    assert!(!dest.exists());
    let kept = std::fs::metadata(part_path(&dest)).unwrap().len();
    let quarter = data().len() / 4;
    assert_eq!(kept as usize, quarter + (data().len() - quarter) / 4);

    // The next run (a server that behaves now) asks for the rest only and ends with the same bytes.
    let good = serve(data(), Behaviour::Serve);
    let got = download(&quick(&good.url, &dest)).unwrap();
    assert_eq!(got.resumed_from, kept);
    assert_eq!(*good.ranges.lock().unwrap(), vec![format!("bytes={kept}-")]);
    assert_eq!(got.sha256, sha256sum(&dest));
    assert_eq!(std::fs::read(&dest).unwrap(), data());
    assert!(!part_path(&dest).exists());
}

#[test]
fn a_server_without_ranges_restarts_from_zero() {
    let server = serve(data(), Behaviour::NoRanges);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    std::fs::write(part_path(&dest), b"stale bytes from another file").unwrap();
    assert_eq!(download(&quick(&server.url, &dest)).unwrap().resumed_from, 0);
    assert_eq!(std::fs::read(&dest).unwrap(), data());
}

#[test]
fn refusals_are_named_and_leave_nothing_behind() {
    let server = serve(data(), Behaviour::Serve);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    let nothing_left = || assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);

    let missing = server.url.replace("file.bin", "nothing.bin");
    let err = download(&quick(&missing, &dest)).unwrap_err().to_string();
    assert!(err.contains("404") && err.contains("--url"), "{err}");
    nothing_left();

    let wrong = "0".repeat(64);
    let err = download(&Download { sha256: Some(&wrong), ..quick(&server.url, &dest) }).unwrap_err();
    assert!(matches!(err, Error::Sha256Mismatch { .. }), "{err}");
    assert!(err.to_string().contains(&sha256sum_of(&data())), "{err}");
    nothing_left();

    let err = download(&Download { sha256: Some("abc"), ..quick(&server.url, &dest) }).unwrap_err().to_string();
    assert!(err.contains("--sha256") && err.contains("64 hexadecimal"), "{err}");

    let file = dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let err = download(&quick(&server.url, &file.join("sub/file.bin"))).unwrap_err().to_string();
    assert!(err.contains("cannot create this folder"), "{err}");
}

fn sha256sum_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x");
    std::fs::write(&path, bytes).unwrap();
    sha256sum(&path)
}

#[test]
fn a_server_that_never_answers_times_out() {
    let server = serve(data(), Behaviour::Silent);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("file.bin");
    let started = std::time::Instant::now();
    let err = download(&Download { attempts: 2, ..quick(&server.url, &dest) }).unwrap_err().to_string();
    assert!(err.contains("gave up after 2 attempts") && err.contains("timeout"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(4), "the read timeout was not applied");
    assert!(!dest.exists());
}
