//! The include folders of the c10d shim's NCCL unit (train/build/cuda_headers.rs) on made-up
//! trees of PyTorch's CUDA 13 and CUDA 12 wheels and of a CUDA toolkit.
use std::path::{Path, PathBuf};

#[path = "../build/cuda_headers.rs"]
mod cuda_headers;

use cuda_headers::{find, nccl_includes};

/// `root/relative` with `header` in it.
fn with_header(root: &Path, relative: &str, header: &str) -> PathBuf {
    let dir = root.join(relative);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(header), "#pragma once\n").unwrap();
    dir
}

#[test]
fn a_cuda_12_wheel_gives_every_library_folder() {
    let root = tempfile::tempdir().unwrap();
    let nvidia = root.path().join("nvidia");
    let runtime = with_header(&nvidia, "cuda_runtime/include", "cuda_runtime_api.h");
    let nccl = with_header(&nvidia, "nccl/include", "nccl.h");
    // What PyTorch's CUDA headers include besides the runtime's.
    let cublas = with_header(&nvidia, "cublas/include", "cublas_v2.h");
    let cusparse = with_header(&nvidia, "cusparse/include", "cusparse.h");
    let cusolver = with_header(&nvidia, "cusolver/include", "cusolverDn.h");
    std::fs::create_dir_all(nvidia.join("no_headers/lib")).unwrap();
    let dirs = nccl_includes(&nvidia, None, &[], None).unwrap();
    assert_eq!(dirs[..2], [runtime.clone(), nccl.clone()]);
    for dir in [&cublas, &cusparse, &cusolver] {
        assert!(dirs.contains(dir), "{} missing from {dirs:?}", dir.display());
    }
    assert_eq!(dirs.len(), 5, "each folder once, none without headers: {dirs:?}");
    assert_eq!(find(&dirs, "cusolverDn.h"), Some(cusolver));
}

#[test]
fn a_cuda_13_wheel_and_a_toolkit() {
    let root = tempfile::tempdir().unwrap();
    let nvidia = root.path().join("nvidia");
    let cu13 = with_header(&nvidia, "cu13/include", "cuda_runtime_api.h");
    let nccl = with_header(&nvidia, "nccl/include", "nccl.h");
    assert_eq!(nccl_includes(&nvidia, None, &[], None).unwrap(), [cu13, nccl.clone()]);

    // CUDA_INCLUDE_DIR first; a toolkit's headers bring no wheel folders along.
    let toolkit = with_header(root.path(), "cuda/include", "cuda_runtime_api.h");
    assert_eq!(nccl_includes(&nvidia, Some(toolkit.clone()), &[], None).unwrap(), [toolkit.clone(), nccl.clone()]);
    let no_wheel = root.path().join("elsewhere/nvidia");
    let given_nccl = with_header(root.path(), "nccl-sdk/include", "nccl.h");
    assert_eq!(
        nccl_includes(&no_wheel, None, std::slice::from_ref(&toolkit), Some(given_nccl.clone())).unwrap(),
        [toolkit, given_nccl]
    );
}

#[test]
fn missing_cuda_or_nccl_headers_leave_nccl_out() {
    let root = tempfile::tempdir().unwrap();
    let nvidia = root.path().join("nvidia");
    with_header(&nvidia, "nccl/include", "nccl.h");
    assert_eq!(nccl_includes(&nvidia, None, &[], None), None, "no cuda_runtime_api.h");
    let no_nccl = root.path().join("other/nvidia");
    let cu13 = with_header(&no_nccl, "cu13/include", "cuda_runtime_api.h");
    // NCCL_INCLUDE_DIR pointing nowhere: only the system's /usr/include (which needs no flag) is left.
    let expected = Path::new("/usr/include/nccl.h").is_file().then(|| vec![cu13]);
    assert_eq!(nccl_includes(&no_nccl, None, &[], Some(root.path().join("no-such-folder"))), expected);
}
