//! The build's choice of TensorRT headers (edge/build/tensorrt_headers.rs) on folders of made-up
//! headers of TensorRT 8, 10 and 11, on the real TensorRT 11.4 headers, and the compiler's own
//! include folders as g++ reports them.
use std::path::{Path, PathBuf};

#[path = "../build/tensorrt_headers.rs"]
mod tensorrt_headers;

use tensorrt_headers::{Choice, HeaderVersion, NONE, choose, default_include_dirs, needs_include_flag, read_version};

mod common;

/// A folder with NvInfer.h, NvOnnxParser.h and an NvInferVersion.h of `major.minor.patch`, written
/// the way that release writes it: numbers (8.x) or through the `TRT_*_ENTERPRISE` macros (10+).
fn headers(root: &Path, name: &str, (major, minor, patch): (u32, u32, u32)) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["NvInfer.h", "NvOnnxParser.h"] {
        std::fs::write(dir.join(file), "#pragma once\n").unwrap();
    }
    let version = if major < 10 {
        format!(
            "#define NV_TENSORRT_MAJOR {major} //!< TensorRT major version.\n#define NV_TENSORRT_MINOR {minor}\n\
             #define NV_TENSORRT_PATCH {patch}\n"
        )
    } else {
        format!(
            "#define TRT_MAJOR_ENTERPRISE {major}\n#define TRT_MINOR_ENTERPRISE {minor}\n#define TRT_PATCH_ENTERPRISE {patch}\n\
             #define NV_TENSORRT_MAJOR TRT_MAJOR_ENTERPRISE //!< TensorRT major version.\n\
             #define NV_TENSORRT_MINOR TRT_MINOR_ENTERPRISE\n#define NV_TENSORRT_PATCH TRT_PATCH_ENTERPRISE\n"
        )
    };
    std::fs::write(dir.join("NvInferVersion.h"), version).unwrap();
    dir
}

fn v(major: u32, minor: u32, patch: u32) -> HeaderVersion {
    HeaderVersion { major, minor, patch }
}

#[test]
fn versions_read_from_real_and_made_up_headers() {
    let real = common::workspace().join("target/tensorrt-headers/include");
    assert_eq!(read_version(&real), Some(v(11, 4, 0)), "{} (scripts/tensorrt-headers.sh)", real.display());
    let root = tempfile::tempdir().unwrap();
    assert_eq!(read_version(&headers(root.path(), "jp6.0", (8, 6, 2))), Some(v(8, 6, 2)));
    assert_eq!(read_version(&headers(root.path(), "jp6.1", (10, 3, 0))), Some(v(10, 3, 0)));
    assert_eq!(read_version(root.path()), None);
}

#[test]
fn older_headers_are_skipped_and_named_and_alone_leave_the_stand_in() {
    let root = tempfile::tempdir().unwrap();
    let old = headers(root.path(), "jp6.0", (8, 6, 2));
    let ten = headers(root.path(), "jp6.1", (10, 3, 0));
    let eleven = headers(root.path(), "jp7", (11, 4, 0));
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    let Ok(Choice::Use { dir, version, skipped }) = choose(None, &[empty.clone(), old.clone(), ten.clone(), eleven])
    else {
        panic!("TensorRT 10 after 8.6 should be used");
    };
    assert_eq!((dir, version), (ten.clone(), v(10, 3, 0)));
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].contains("TensorRT 8.6.2") && skipped[0].contains(&old.display().to_string()), "{skipped:?}");
    assert!(skipped[0].contains("needs TensorRT 10 or newer"), "{skipped:?}");

    // Only 8.6 (JetPack 6.0): the crate builds without TensorRT and says why.
    let Ok(Choice::StandIn { why, skipped }) = choose(None, &[old.clone(), empty.clone()]) else {
        panic!("no usable headers: the stand-in");
    };
    assert_eq!(skipped.len(), 1);
    assert!(why.contains("TensorRT 8.6.2") && why.contains(&empty.display().to_string()), "{why}");
    let Ok(Choice::StandIn { why, skipped }) = choose(None, std::slice::from_ref(&empty)) else {
        panic!("nothing found")
    };
    assert!(skipped.is_empty() && why.starts_with("none (looked in"), "{why}");

    // TENSORRT_INCLUDE_DIR: used as given, refused with what to do, or `none` to opt out.
    assert!(
        matches!(choose(Some(&ten), std::slice::from_ref(&old)), Ok(Choice::Use { version, .. }) if version == v(10, 3, 0))
    );
    for bad in [&old, &empty] {
        let err = choose(Some(bad), std::slice::from_ref(&ten)).unwrap_err();
        assert!(err.contains(&format!("TENSORRT_INCLUDE_DIR={}", bad.display())), "{err}");
        assert!(err.contains(&format!("TENSORRT_INCLUDE_DIR={NONE}")), "{err}");
    }
    assert!(choose(Some(&old), &[]).unwrap_err().contains("TensorRT 8.6.2"));
    let Ok(Choice::StandIn { why, .. }) = choose(Some(Path::new(NONE)), &[ten]) else { panic!("opted out") };
    assert_eq!(why, format!("TENSORRT_INCLUDE_DIR={NONE}"));
}

#[test]
fn the_compilers_own_folders_get_no_include_flag() {
    // g++ itself reports the folders it searches; /usr/include is always one of them.
    let out = std::process::Command::new("c++").args(["-xc++", "-E", "-v", "/dev/null"]).output().unwrap();
    let defaults = default_include_dirs(&String::from_utf8_lossy(&out.stderr));
    assert!(defaults.contains(&PathBuf::from("/usr/include")), "{defaults:?}");
    assert!(!needs_include_flag(Path::new("/usr/include"), &defaults));
    assert!(!needs_include_flag(Path::new("/usr/include/"), &defaults));
    let elsewhere = tempfile::tempdir().unwrap();
    assert!(needs_include_flag(elsewhere.path(), &defaults));
}
