//! Where the c10d shim's NCCL unit finds CUDA's and NCCL's headers. Shared by build.rs and
//! train/tests/cuda_headers.rs, which runs it on made-up wheel trees.
use std::path::{Path, PathBuf};

/// The first folder of `dirs` that holds `header`.
pub fn find(dirs: &[PathBuf], header: &str) -> Option<PathBuf> {
    dirs.iter().find(|d| d.join(header).is_file()).cloned()
}

/// The include folders for the NCCL unit, or None where CUDA's or NCCL's headers are missing.
/// Looked in: `cuda_given` (CUDA_INCLUDE_DIR), the wheel's `nvidia/` packages beside `torch/`
/// (CUDA 13's `cu13/`, CUDA 12's per-library folders), then `toolkits` (CUDA_HOME, /usr/local/cuda);
/// NCCL in `nccl_given` (NCCL_INCLUDE_DIR), the wheel, then /usr/include. PyTorch's CUDA headers
/// include cuBLAS', cuSPARSE's and cuSOLVER's, which a CUDA 12 wheel keeps each in its own
/// `nvidia/<library>/include`: when CUDA comes from the wheel, all of those are added.
pub fn nccl_includes(
    nvidia: &Path,
    cuda_given: Option<PathBuf>,
    toolkits: &[PathBuf],
    nccl_given: Option<PathBuf>,
) -> Option<Vec<PathBuf>> {
    let mut cuda_dirs: Vec<PathBuf> = cuda_given.into_iter().collect();
    cuda_dirs.extend(["cu13/include", "cu12/include", "cuda_runtime/include"].map(|d| nvidia.join(d)));
    cuda_dirs.extend(toolkits.iter().cloned());
    let mut nccl_dirs: Vec<PathBuf> = nccl_given.into_iter().collect();
    nccl_dirs.extend([nvidia.join("nccl/include"), PathBuf::from("/usr/include")]);
    let cuda = find(&cuda_dirs, "cuda_runtime_api.h")?;
    let mut dirs = vec![cuda.clone(), find(&nccl_dirs, "nccl.h")?];
    if cuda.starts_with(nvidia) {
        let mut libraries: Vec<PathBuf> = std::fs::read_dir(nvidia)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("include"))
            .filter(|include| include.is_dir())
            .collect();
        libraries.sort();
        dirs.extend(libraries);
    }
    let mut seen = Vec::new();
    dirs.retain(|d| {
        // The compiler's own folder needs no flag (and -isystem /usr/include breaks its C++ headers).
        let new = d != Path::new("/usr/include") && !seen.contains(d);
        seen.push(d.clone());
        new
    });
    Some(dirs)
}
