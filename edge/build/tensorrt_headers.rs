//! Which TensorRT headers the shim compiles against: the first folder, in order, with TensorRT 10 or
//! newer; older ones (JetPack 6.0's 8.6, JetPack 5's 8.5) are skipped and named, so that the rest of
//! the crate still builds. Shared by build.rs and edge/tests/tensorrt_headers.rs, which runs it on
//! folders of made-up headers.
use std::fmt;
use std::path::{Path, PathBuf};

/// The oldest major with named tensors, `Dims64` and `enqueueV3` (the shim's `#error` says so too).
pub const OLDEST_MAJOR: u32 = 10;

/// What `TENSORRT_INCLUDE_DIR` is set to for a build without TensorRT.
pub const NONE: &str = "none";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl fmt::Display for HeaderVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// `NV_TENSORRT_MAJOR`/`MINOR`/`PATCH` from `dir/NvInferVersion.h`, given as numbers (8.x) or
/// through one more macro (`#define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE`, 10.x and 11.x).
pub fn read_version(dir: &Path) -> Option<HeaderVersion> {
    let text = std::fs::read_to_string(dir.join("NvInferVersion.h")).ok()?;
    let define = |name: &str| {
        text.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("#define") && words.next() == Some(name)).then(|| words.next()).flatten()
        })
    };
    let number = |name: &str| {
        let value = define(name)?;
        value.parse().ok().or_else(|| define(value)?.parse().ok())
    };
    Some(HeaderVersion {
        major: number("NV_TENSORRT_MAJOR")?,
        minor: number("NV_TENSORRT_MINOR")?,
        patch: number("NV_TENSORRT_PATCH")?,
    })
}

fn has_headers(dir: &Path) -> bool {
    dir.join("NvInfer.h").is_file() && dir.join("NvOnnxParser.h").is_file()
}

#[derive(Debug, PartialEq, Eq)]
pub enum Choice {
    /// Compile the shim against the headers in `dir`.
    Use { dir: PathBuf, version: HeaderVersion, skipped: Vec<String> },
    /// Compile the stand-in: `why` says what was found, for `doctor` and the build's warning.
    StandIn { why: String, skipped: Vec<String> },
}

/// Picks the headers: `explicit` (TENSORRT_INCLUDE_DIR) must hold usable ones or be [`NONE`];
/// otherwise the first of `candidates` that does, skipping (and naming) folders of older majors.
pub fn choose(explicit: Option<&Path>, candidates: &[PathBuf]) -> Result<Choice, String> {
    let too_old = |dir: &Path, v: Option<HeaderVersion>| {
        let found = v.map_or("headers of an unreadable version".to_string(), |v| format!("TensorRT {v}'s headers"));
        format!("{} holds {found}; the shim needs TensorRT {OLDEST_MAJOR} or newer", dir.display())
    };
    if let Some(dir) = explicit {
        if dir == Path::new(NONE) {
            return Ok(Choice::StandIn { why: format!("TENSORRT_INCLUDE_DIR={NONE}"), skipped: Vec::new() });
        }
        if !has_headers(dir) {
            return Err(format!(
                "TENSORRT_INCLUDE_DIR={}: no NvInfer.h and NvOnnxParser.h there. Point it at TensorRT's include \
                 folder, or set TENSORRT_INCLUDE_DIR={NONE} to build without TensorRT",
                dir.display()
            ));
        }
        return match read_version(dir) {
            Some(version) if version.major >= OLDEST_MAJOR => {
                Ok(Choice::Use { dir: dir.to_path_buf(), version, skipped: Vec::new() })
            }
            v => Err(format!(
                "TENSORRT_INCLUDE_DIR={}: {} (JetPack 6.1 or newer). Point it at TensorRT 10 or 11's include \
                 folder, or set TENSORRT_INCLUDE_DIR={NONE} to build without TensorRT",
                dir.display(),
                too_old(dir, v)
            )),
        };
    }
    let mut skipped = Vec::new();
    for dir in candidates.iter().filter(|d| has_headers(d)) {
        match read_version(dir) {
            Some(version) if version.major >= OLDEST_MAJOR => {
                return Ok(Choice::Use { dir: dir.clone(), version, skipped });
            }
            v => skipped.push(too_old(dir, v)),
        }
    }
    let looked = candidates.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
    let why = if skipped.is_empty() {
        format!("none (looked in {looked})")
    } else {
        format!("none usable ({}; looked in {looked})", skipped.join("; "))
    };
    Ok(Choice::StandIn { why, skipped })
}

/// The folders a compiler searches for `#include <...>` by itself, from its `-v` report
/// (`#include <...> search starts here:` up to `End of search list.`).
pub fn default_include_dirs(verbose_report: &str) -> Vec<PathBuf> {
    verbose_report
        .lines()
        .skip_while(|l| !l.starts_with("#include <...> search starts here:"))
        .skip(1)
        .take_while(|l| !l.starts_with("End of search list."))
        .map(|l| PathBuf::from(l.trim()))
        .map(|d| d.canonicalize().unwrap_or(d))
        .collect()
}

/// Whether `dir` must be passed to the compiler: not when it already searches it, since
/// `-isystem /usr/include` reorders its folders and breaks libstdc++'s `#include_next <stdlib.h>`.
pub fn needs_include_flag(dir: &Path, defaults: &[PathBuf]) -> bool {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    !defaults.contains(&dir)
}
