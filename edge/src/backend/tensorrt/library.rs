//! Finding and opening TensorRT at run time (dlopen), so the same binary runs without it and
//! says where it looked. Nothing is called before the library's version has been checked
//! against the headers the shim was compiled with: TensorRT's C++ ABI changes between majors.
use std::fmt;
use std::path::{Path, PathBuf};

use libloading::Library;

use crate::{Error, Result};

/// A TensorRT version as `getInferLibVersion` reports it (`major * 10000 + minor * 100 + patch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    pub fn from_int(v: i32) -> Self {
        let v = v.max(0) as u32;
        Self { major: v / 10000, minor: v / 100 % 100, patch: v % 100 }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The oldest major with named tensors, `Dims64` and `enqueueV3` throughout: the one the build
/// chooses headers by (edge/build/tensorrt_headers.rs).
pub const OLDEST_MAJOR: u32 = match u32::from_str_radix(env!("CYCLEGAN_TENSORRT_OLDEST_MAJOR"), 10) {
    Ok(major) => major,
    Err(_) => panic!("build.rs sets CYCLEGAN_TENSORRT_OLDEST_MAJOR to a number"),
};

/// A TensorRT library file and what it can do: the full `libnvinfer` builds and runs engines;
/// the lean and dispatch runtimes only run version-compatible ones.
#[derive(Debug)]
pub struct Probe {
    pub path: PathBuf,
    pub version: Version,
    pub can_build: bool,
    pub can_run: bool,
    library: Library,
}

type VersionFn = unsafe extern "C" fn() -> i32;

/// Opens a TensorRT library that stays in memory when its last handle is dropped: TensorRT does
/// not document unloading as safe (its initialisers register globals and threads), and a process
/// may open it several times (doctor probes every candidate, then opens one).
pub(crate) fn open_resident(path: &Path) -> std::result::Result<Library, libloading::Error> {
    // SAFETY: loading a shared library runs its initialisers; TensorRT's only set up globals.
    // The flags are dlopen's default (lazy, local) plus RTLD_NODELETE.
    unsafe { libloading::os::unix::Library::open(Some(path), libc::RTLD_LAZY | libc::RTLD_LOCAL | libc::RTLD_NODELETE) }
        .map(Library::from)
}

/// Opens `path` and asks its version; errors name the file and what is wrong with it.
pub fn probe(path: &Path) -> Result<Probe> {
    let load_error = |reason: String| Error::TensorrtLoad { path: path.to_path_buf(), reason };
    if !path.exists() {
        return Err(load_error("no such file".into()));
    }
    let library = open_resident(path).map_err(|e| load_error(crate::backend::dl_error(&e)))?;
    // SAFETY: the symbol is TensorRT's `int32_t getInferLibVersion()`, checked by name.
    let version = unsafe {
        let get: libloading::Symbol<'_, VersionFn> = library
            .get(b"getInferLibVersion\0")
            .map_err(|_| load_error("it exports no getInferLibVersion: not a TensorRT library".into()))?;
        Version::from_int(get())
    };
    let has = |name: &[u8]| unsafe { library.get::<*const ()>(name) }.is_ok();
    let can_build = has(b"createInferBuilder_INTERNAL\0");
    let can_run = has(b"createInferRuntime_INTERNAL\0");
    Ok(Probe { path: path.to_path_buf(), version, can_build, can_run, library })
}

/// Library file names, full library first, newest major first.
fn file_names() -> Vec<String> {
    let mut names = Vec::new();
    for major in [11, 10] {
        names.push(format!("libnvinfer.so.{major}"));
    }
    names.push("libnvinfer.so".into());
    for kind in ["lean", "dispatch"] {
        for major in [11, 10] {
            names.push(format!("libnvinfer_{kind}.so.{major}"));
        }
    }
    names
}

/// Folders looked in, in order: `LD_LIBRARY_PATH`, the project's `.venv` (pip's `tensorrt-cu13-libs`
/// and friends, relative to the working directory and to the executable), then the places
/// NVIDIA's packages, JetPack and the tarball use.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("LD_LIBRARY_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default();
    for site_packages in cyclegan_runtime::venv::site_packages() {
        for package in ["tensorrt_libs", "tensorrt_lean_libs", "tensorrt_dispatch_libs"] {
            dirs.push(site_packages.join(package));
        }
    }
    let arch = std::env::consts::ARCH;
    dirs.push(PathBuf::from(format!("/usr/lib/{arch}-linux-gnu")));
    dirs.push(PathBuf::from("/usr/local/TensorRT/lib"));
    dirs.push(PathBuf::from("/usr/local/tensorrt/lib"));
    dirs.push(PathBuf::from("/usr/local/cuda/lib64"));
    // The same folder reached twice (`.` is often the checkout) is looked in once.
    let mut seen = Vec::new();
    dirs.into_iter()
        .map(|d| d.canonicalize().unwrap_or(d))
        .filter(|d| {
            let new = !seen.contains(d);
            seen.push(d.clone());
            new
        })
        .collect()
}

/// Every candidate path: `explicit` alone if given (a file, or a folder to look in), else each
/// library name in each search folder.
pub fn candidates(explicit: Option<&Path>) -> Vec<PathBuf> {
    match explicit {
        Some(p) if p.is_dir() => file_names().iter().map(|n| p.join(n)).collect(),
        Some(p) => vec![p.to_path_buf()],
        None => {
            let names = file_names();
            search_dirs().iter().flat_map(|d| names.iter().map(move |n| d.join(n))).collect()
        }
    }
}

/// The first candidate that is a TensorRT able to build and run engines, of the major of the
/// `headers` the shim was compiled with (another major's ABI differs: e.g. pip's TensorRT 11 ahead
/// of the system's 10 is passed over). Partial runtimes (lean, dispatch) and other majors found on
/// the way are named in the error, as is every place looked in.
pub fn find(candidates: &[PathBuf], headers: Version) -> Result<Probe> {
    let mut partial = Vec::new();
    for path in candidates.iter().filter(|p| p.exists()) {
        match probe(path) {
            Ok(probe) if probe.can_build && probe.can_run => match check_compatible(headers, probe.version, path) {
                Ok(()) => return Ok(probe),
                Err(Error::TensorrtLoad { reason, .. }) => partial.push(format!("{} ({reason})", path.display())),
                Err(e) => return Err(e),
            },
            Ok(probe) => partial.push(format!(
                "{} (TensorRT {}, runtime only: cannot build engines)",
                path.display(),
                probe.version
            )),
            // Another architecture's library, a broken install: say so and look further.
            Err(e) => partial.push(format!("{} (unusable: {e})", path.display())),
        }
    }
    let looked: Vec<String> = candidates.iter().filter_map(|p| p.parent()).map(|d| d.display().to_string()).fold(
        Vec::new(),
        |mut dirs, d| {
            if !dirs.contains(&d) {
                dirs.push(d);
            }
            dirs
        },
    );
    Err(Error::TensorrtMissing { looked: looked.join(", "), partial: partial.join("; ") })
}

/// The ONNX parser beside the library (same folder and major), else by name through the loader.
pub fn onnx_parser_candidates(nvinfer: &Path, major: u32) -> Vec<PathBuf> {
    let name = format!("libnvonnxparser.so.{major}");
    let mut paths = Vec::new();
    if let Some(dir) = nvinfer.parent() {
        paths.push(dir.join(&name));
    }
    paths.push(PathBuf::from(name));
    paths
}

/// Opens the first parser candidate that loads and exports `createNvOnnxParser_INTERNAL`.
pub fn open_onnx_parser(candidates: &[PathBuf]) -> Result<(PathBuf, Library)> {
    let mut reasons = Vec::new();
    for path in candidates {
        match open_resident(path) {
            Ok(lib) if unsafe { lib.get::<*const ()>(b"createNvOnnxParser_INTERNAL\0") }.is_ok() => {
                return Ok((path.clone(), lib));
            }
            Ok(_) => reasons.push(format!("{}: no createNvOnnxParser_INTERNAL", path.display())),
            Err(e) => reasons.push(crate::backend::dl_error(&e)),
        }
    }
    Err(Error::TensorrtLoad {
        path: candidates.first().cloned().unwrap_or_default(),
        reason: format!(
            "TensorRT's ONNX parser did not load ({}). Install it beside libnvinfer (libnvonnxparsers10 on \
             JetPack 6, pip install tensorrt-cu13-libs on a desktop)",
            reasons.join("; ")
        ),
    })
}

/// Whether library `path` of version `lib` can be driven through headers of version `headers`.
pub fn check_compatible(headers: Version, lib: Version, path: &Path) -> Result<()> {
    if lib.major < OLDEST_MAJOR {
        return Err(Error::TensorrtLoad {
            path: path.to_path_buf(),
            reason: format!(
                "TensorRT {lib} is too old: {OLDEST_MAJOR}.0 or newer is needed (JetPack 6.1 and 6.2 have 10.3)"
            ),
        });
    }
    if lib.major != headers.major {
        return Err(Error::TensorrtLoad {
            path: path.to_path_buf(),
            reason: format!(
                "TensorRT {lib}, but this program was compiled against TensorRT {headers}'s headers and their ABIs \
                 differ. Rebuild with TENSORRT_INCLUDE_DIR pointing at TensorRT {}.x's include folder",
                lib.major
            ),
        });
    }
    Ok(())
}

impl Probe {
    pub(crate) fn library(&self) -> &Library {
        &self.library
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_decode_like_tensorrt_encodes_them() {
        assert_eq!(Version::from_int(110400), Version { major: 11, minor: 4, patch: 0 });
        assert_eq!(Version::from_int(100307).to_string(), "10.3.7");
    }

    #[test]
    fn a_missing_library_lists_the_folders_looked_in() {
        let dir = tempfile::tempdir().unwrap();
        let err = find(&candidates(Some(dir.path())), Version::from_int(110400)).unwrap_err().to_string();
        assert!(err.contains("TensorRT not found"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }

    #[test]
    fn a_library_that_is_not_tensorrt_is_named() {
        // Any shared library will do; the C library is everywhere.
        let arch = std::env::consts::ARCH;
        let libc = [format!("/lib/{arch}-linux-gnu/libc.so.6"), "/usr/lib/libc.so.6".to_string()]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("a libc.so.6");
        let err = probe(&libc).unwrap_err().to_string();
        assert!(err.contains("not a TensorRT library") && err.contains("libc.so.6"), "{err}");
    }

    /// A made-up `libnvinfer.so.MAJOR` of `version` exporting what the loader looks for, compiled by
    /// the system's C compiler into `dir/folder`.
    fn fake_nvinfer(dir: &Path, folder: &str, version: i32) -> PathBuf {
        let source = dir.join(format!("{folder}.c"));
        std::fs::write(
            &source,
            format!(
                "int getInferLibVersion(void) {{ return {version}; }}\n\
                 void* createInferBuilder_INTERNAL(void) {{ return 0; }}\n\
                 void* createInferRuntime_INTERNAL(void) {{ return 0; }}\n"
            ),
        )
        .unwrap();
        std::fs::create_dir_all(dir.join(folder)).unwrap();
        let path = dir.join(folder).join(format!("libnvinfer.so.{}", version / 10000));
        let status =
            std::process::Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(&path).arg(&source).status().unwrap();
        assert!(status.success(), "cc could not build {}", path.display());
        path
    }

    #[test]
    fn libraries_of_another_major_than_the_headers_are_passed_over_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let old = fake_nvinfer(dir.path(), "jetpack-6.0", 80602);
        let pip = fake_nvinfer(dir.path(), "pip", 110400);
        let system = fake_nvinfer(dir.path(), "system", 100300);
        let candidates = [old.clone(), pip.clone(), system.clone()];
        assert_eq!(find(&candidates, Version::from_int(100307)).unwrap().path, system);
        assert_eq!(find(&candidates, Version::from_int(110400)).unwrap().path, pip);
        let err = find(&[old.clone(), pip.clone()], Version::from_int(100300)).unwrap_err().to_string();
        assert!(err.contains(&format!("{} (TensorRT 8.6.2 is too old", old.display())), "{err}");
        let other =
            format!("{} (TensorRT 11.4.0, but this program was compiled against TensorRT 10.3.0", pip.display());
        assert!(err.contains(&other), "{err}");
    }

    #[test]
    fn tensorrt_libraries_stay_loaded_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let lib = fake_nvinfer(dir.path(), "resident", 100300);
        let mapped = || std::fs::read_to_string("/proc/self/maps").unwrap().contains(lib.to_str().unwrap());
        assert!(!mapped());
        drop(probe(&lib).unwrap());
        assert!(mapped(), "{} was unloaded with its last handle", lib.display());
    }

    #[test]
    fn a_missing_file_is_named() {
        let err = probe(Path::new("/nonexistent/libnvinfer.so.10")).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/libnvinfer.so.10") && err.contains("no such file"), "{err}");
    }

    #[test]
    fn header_and_library_majors_must_agree() {
        let path = Path::new("libnvinfer.so.10");
        let v = |major, minor| Version { major, minor, patch: 0 };
        assert!(check_compatible(v(11, 4), v(11, 0), path).is_ok());
        let err = check_compatible(v(11, 4), v(10, 3), path).unwrap_err().to_string();
        assert!(err.contains("TensorRT 10.3.0") && err.contains("TENSORRT_INCLUDE_DIR"), "{err}");
        let err = check_compatible(v(8, 6), v(8, 6), path).unwrap_err().to_string();
        assert!(err.contains("too old"), "{err}");
    }
}
