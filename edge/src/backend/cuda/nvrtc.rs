//! NVRTC, the CUDA runtime compiler, loaded at run time: the kernels are compiled on the machine
//! that runs them, for its GPU, so that nothing links against the CUDA toolkit and one binary
//! serves every device (and says what is missing where NVRTC is not installed).
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

use libloading::Library;

use super::CudaError;

type Program = *mut c_void;
type Status = c_int;

type VersionFn = unsafe extern "C" fn(*mut c_int, *mut c_int) -> Status;
type CreateProgramFn = unsafe extern "C" fn(
    *mut Program,
    *const c_char,
    *const c_char,
    c_int,
    *const *const c_char,
    *const *const c_char,
) -> Status;
type CompileProgramFn = unsafe extern "C" fn(Program, c_int, *const *const c_char) -> Status;
type SizeFn = unsafe extern "C" fn(Program, *mut usize) -> Status;
type BytesFn = unsafe extern "C" fn(Program, *mut c_char) -> Status;
type DestroyProgramFn = unsafe extern "C" fn(*mut Program) -> Status;
type ErrorStringFn = unsafe extern "C" fn(Status) -> *const c_char;
type ArchCountFn = unsafe extern "C" fn(*mut c_int) -> Status;
type ArchsFn = unsafe extern "C" fn(*mut c_int) -> Status;

const SUCCESS: Status = 0;

/// The shared library names tried in each folder, newest first.
const LIBRARY_NAMES: [&str; 3] = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];

/// What the kernels are compiled to for a GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Machine code for exactly this architecture (`sm_87`): NVRTC supports the GPU.
    Cubin(String),
    /// PTX for the newest architecture NVRTC knows below the GPU's (`compute_90` on an sm_120):
    /// the driver compiles it for the GPU when loading.
    Ptx(String),
}

impl Target {
    /// The architecture option NVRTC takes (`sm_87`, `compute_90`).
    pub fn arch(&self) -> &str {
        match self {
            Self::Cubin(arch) | Self::Ptx(arch) => arch,
        }
    }
}

/// What is known of an NVRTC before choosing it: its CUDA release and the architectures it
/// compiles for (None where it cannot say: releases before 11.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Abilities {
    pub version: (i32, i32),
    pub archs: Option<Vec<i32>>,
}

/// Which of `candidates` (in search order) compiles for a GPU of compute capability `gpu` (87
/// for 8.7) whose driver runs CUDA `driver` (12.6 as (12, 6)), and to what: the first that has
/// the GPU's architecture (a CUBIN, which needs a driver of NVRTC's major or newer), else the
/// first that has an older one (PTX, which the driver must be at least as new as NVRTC to read).
/// Err: why each candidate cannot.
pub fn choose(candidates: &[Abilities], gpu: i32, driver: (i32, i32)) -> Result<(usize, Target), Vec<String>> {
    let cubin = candidates
        .iter()
        .position(|c| c.version.0 <= driver.0 && c.archs.as_ref().is_none_or(|archs| archs.contains(&gpu)));
    if let Some(i) = cubin {
        return Ok((i, Target::Cubin(format!("sm_{gpu}"))));
    }
    let older = |c: &Abilities| c.archs.as_ref().and_then(|a| a.iter().copied().filter(|&a| a < gpu).max());
    let ptx = candidates
        .iter()
        .enumerate()
        .find_map(|(i, c)| (c.version <= driver).then(|| older(c).map(|a| (i, a))).flatten());
    if let Some((i, arch)) = ptx {
        return Ok((i, Target::Ptx(format!("compute_{arch}"))));
    }
    Err(candidates
        .iter()
        .map(|c| {
            let (major, minor) = c.version;
            let range = match c.archs.as_deref() {
                Some([first, .., last]) => format!("sm_{first} to sm_{last}"),
                Some([only]) => format!("sm_{only}"),
                _ => "no architecture".into(),
            };
            if c.version.0 > driver.0 || (older(c).is_some() && c.version > driver) {
                format!("NVRTC {major}.{minor} makes code newer than the driver's CUDA {}.{} loads", driver.0, driver.1)
            } else {
                format!("NVRTC {major}.{minor} compiles for {range}, not sm_{gpu}")
            }
        })
        .collect())
}

/// A loaded NVRTC library.
pub struct Nvrtc {
    path: PathBuf,
    version: (i32, i32),
    archs: Option<Vec<i32>>,
    create_program: CreateProgramFn,
    compile_program: CompileProgramFn,
    program_log_size: SizeFn,
    program_log: BytesFn,
    ptx_size: SizeFn,
    ptx: BytesFn,
    cubin_size: SizeFn,
    cubin: BytesFn,
    destroy_program: DestroyProgramFn,
    error_string: ErrorStringFn,
    // The function pointers above point into it: it must live as long as they do.
    _library: Library,
    // NVRTC dlopens `libnvrtc-builtins.so.X.Y` by name when it compiles; the pip wheels ship it
    // next to libnvrtc in a folder the loader does not search, so it is loaded from there first
    // (the loader then matches the name to it).
    _builtins: Option<Library>,
}

impl std::fmt::Debug for Nvrtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Nvrtc").field("path", &self.path).field("version", &self.version).finish()
    }
}

/// Folders that may hold NVRTC, in order: the project's `.venv` (the pip wheels
/// `nvidia-cuda-nvrtc` for CUDA 13 and 12, found as for ONNX Runtime),
/// then the toolkit's and the system's.
pub fn nvrtc_folders() -> Vec<PathBuf> {
    let mut folders = Vec::new();
    for site_packages in cyclegan_runtime::venv::site_packages() {
        let nvidia = site_packages.join("nvidia");
        folders.push(nvidia.join("cu13/lib"));
        folders.push(nvidia.join("cuda_nvrtc/lib"));
    }
    for dir in [
        "/usr/local/cuda/lib64",
        "/usr/local/cuda/targets/aarch64-linux/lib",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
    ] {
        folders.push(PathBuf::from(dir));
    }
    folders
}

fn symbol<T: Copy>(library: &Library, path: &Path, name: &str) -> Result<T, CudaError> {
    // SAFETY: the caller names the symbol's C signature in T (the types above follow nvrtc.h).
    unsafe { library.get::<T>(name.as_bytes()) }.map(|s| *s).map_err(|e| CudaError::NvrtcLoad {
        path: path.to_path_buf(),
        reason: format!("no {name}: {}", crate::backend::dl_error(&e)),
    })
}

impl Nvrtc {
    /// Loads NVRTC: `CYCLEGAN_NVRTC` (a file; nothing else is tried when it is set), else the
    /// first of [`LIBRARY_NAMES`] found in [`nvrtc_folders`], else those names through the
    /// loader's own search (`LD_LIBRARY_PATH`, the ld.so cache).
    pub fn load() -> Result<Nvrtc, CudaError> {
        Self::load_all()?.into_iter().next().ok_or_else(Self::missing)
    }

    /// The NVRTC that compiles for a GPU of compute capability `gpu` under a driver of CUDA
    /// `driver` (see [`choose`]), of all those [`load`](Self::load) would try, and what to.
    pub fn load_for(gpu: (i32, i32), driver: (i32, i32)) -> Result<(Nvrtc, Target), CudaError> {
        let mut all = Self::load_all()?;
        if all.is_empty() {
            return Err(Self::missing());
        }
        let abilities: Vec<Abilities> = all.iter().map(Nvrtc::abilities).collect();
        let arch = gpu.0 * 10 + gpu.1;
        match choose(&abilities, arch, driver) {
            Ok((i, target)) => Ok((all.swap_remove(i), target)),
            Err(reasons) => Err(CudaError::NoNvrtcFor {
                gpu: format!("sm_{arch}"),
                driver: format!("{}.{}", driver.0, driver.1),
                tried: all
                    .iter()
                    .zip(reasons)
                    .map(|(n, why)| format!("{}: {why}", n.path.display()))
                    .collect::<Vec<_>>()
                    .join("; "),
            }),
        }
    }

    /// Every NVRTC found, in search order (`CYCLEGAN_NVRTC` alone when it is set); libraries
    /// that do not load are passed over, one copy of each release kept.
    fn load_all() -> Result<Vec<Nvrtc>, CudaError> {
        if let Some(path) = std::env::var_os("CYCLEGAN_NVRTC") {
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(CudaError::NvrtcLoad { path, reason: "no such file (from CYCLEGAN_NVRTC)".into() });
            }
            return Ok(vec![Self::open(&path, path.clone())?]);
        }
        let files = nvrtc_folders()
            .into_iter()
            .flat_map(|folder| LIBRARY_NAMES.map(|name| folder.join(name)))
            .filter(|path| path.is_file())
            .chain(LIBRARY_NAMES.map(PathBuf::from));
        let mut found: Vec<Nvrtc> = Vec::new();
        for file in files {
            if let Ok(nvrtc) = Self::open(&file, file.clone())
                && !found.iter().any(|n| n.version == nvrtc.version)
            {
                found.push(nvrtc);
            }
        }
        Ok(found)
    }

    fn missing() -> CudaError {
        let looked: Vec<String> = nvrtc_folders().iter().map(|f| f.display().to_string()).collect();
        CudaError::NvrtcMissing {
            looked: format!(
                "{} in .venv/lib/python3*/site-packages/nvidia/{{cu13,cuda_nvrtc}}/lib (under the working directory, \
                 its parents and the executable's), {} and the loader's search path",
                LIBRARY_NAMES.join(", "),
                looked.join(", ")
            ),
        }
    }

    /// Opens `file` (a path, or a bare name for the loader to search), reported as `path`.
    fn open(file: &Path, path: PathBuf) -> Result<Nvrtc, CudaError> {
        // SAFETY: loading NVRTC runs only its (and its dependencies') initialisers.
        let library = unsafe { Library::new(file) }
            .map_err(|e| CudaError::NvrtcLoad { path: path.clone(), reason: crate::backend::dl_error(&e) })?;
        let version_fn: VersionFn = symbol(&library, &path, "nvrtcVersion")?;
        let (mut major, mut minor) = (0, 0);
        // SAFETY: two out-parameters, as nvrtc.h declares.
        let status = unsafe { version_fn(&mut major, &mut minor) };
        if status != SUCCESS {
            return Err(CudaError::NvrtcLoad { path, reason: format!("nvrtcVersion failed ({status})") });
        }
        Ok(Nvrtc {
            version: (major, minor),
            archs: Self::read_archs(&library, &path),
            create_program: symbol(&library, &path, "nvrtcCreateProgram")?,
            compile_program: symbol(&library, &path, "nvrtcCompileProgram")?,
            program_log_size: symbol(&library, &path, "nvrtcGetProgramLogSize")?,
            program_log: symbol(&library, &path, "nvrtcGetProgramLog")?,
            ptx_size: symbol(&library, &path, "nvrtcGetPTXSize")?,
            ptx: symbol(&library, &path, "nvrtcGetPTX")?,
            cubin_size: symbol(&library, &path, "nvrtcGetCUBINSize")?,
            cubin: symbol(&library, &path, "nvrtcGetCUBIN")?,
            destroy_program: symbol(&library, &path, "nvrtcDestroyProgram")?,
            error_string: symbol(&library, &path, "nvrtcGetErrorString")?,
            _builtins: Self::builtins(file, (major, minor))?,
            path,
            _library: library,
        })
    }

    /// The architectures NVRTC compiles for (`nvrtcGetSupportedArchs`, CUDA 11.2+).
    fn read_archs(library: &Library, path: &Path) -> Option<Vec<i32>> {
        let count_fn: ArchCountFn = symbol(library, path, "nvrtcGetNumSupportedArchs").ok()?;
        let archs_fn: ArchsFn = symbol(library, path, "nvrtcGetSupportedArchs").ok()?;
        let mut count = 0;
        // SAFETY: an out-parameter, then a buffer of the count it gave, as nvrtc.h declares.
        if unsafe { count_fn(&mut count) } != SUCCESS || count <= 0 {
            return None;
        }
        let mut archs = vec![0; count as usize];
        (unsafe { archs_fn(archs.as_mut_ptr()) } == SUCCESS).then_some(archs)
    }

    /// NVRTC's builtins library beside `file` (none for a bare name: the loader's search finds
    /// both or neither).
    fn builtins(file: &Path, (major, minor): (i32, i32)) -> Result<Option<Library>, CudaError> {
        let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) else { return Ok(None) };
        let path = folder.join(format!("libnvrtc-builtins.so.{major}.{minor}"));
        if !path.is_file() {
            return Ok(None);
        }
        // SAFETY: as for NVRTC itself.
        unsafe { Library::new(&path) }
            .map(Some)
            .map_err(|e| CudaError::NvrtcLoad { path, reason: crate::backend::dl_error(&e) })
    }

    /// (major, minor) of the CUDA release NVRTC comes from.
    pub fn version(&self) -> (i32, i32) {
        self.version
    }

    /// What it is and compiles for, as [`choose`] weighs it.
    pub fn abilities(&self) -> Abilities {
        Abilities { version: self.version, archs: self.archs.clone() }
    }

    /// The library loaded (a bare soname where the loader found it).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn describe(&self, status: Status) -> String {
        // SAFETY: nvrtcGetErrorString returns a static C string for any status.
        let text = unsafe { (self.error_string)(status) };
        if text.is_null() {
            format!("NVRTC error {status}")
        } else {
            // SAFETY: non-null, NUL-terminated, static.
            unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
        }
    }

    /// Compiles CUDA C++ `source` (called `name` in messages) for `arch`: `compute_XY` gives
    /// PTX (NUL-terminated, as the driver wants it), `sm_XY` a CUBIN for exactly that GPU.
    /// `options` are NVRTC's (`--fmad=false`, `-DNAME=1`, ...); the architecture is added here.
    /// A failed compilation's error carries NVRTC's log.
    pub fn compile(&self, source: &str, name: &str, arch: &str, options: &[&str]) -> Result<Vec<u8>, CudaError> {
        let fail = |log: String| CudaError::Compile { name: name.into(), arch: arch.into(), log };
        let cubin = if arch.starts_with("sm_") {
            true
        } else if arch.starts_with("compute_") {
            false
        } else {
            return Err(fail(format!("architecture {arch:?}: use compute_XY (PTX) or sm_XY (CUBIN)")));
        };
        let c_source = CString::new(source).map_err(|_| fail("the source contains a NUL byte".into()))?;
        let c_name = CString::new(name).map_err(|_| fail("the name contains a NUL byte".into()))?;
        let mut c_options = vec![
            CString::new(format!("--gpu-architecture={arch}"))
                .map_err(|_| fail("the architecture contains a NUL byte".into()))?,
        ];
        for option in options {
            c_options.push(CString::new(*option).map_err(|_| fail(format!("option {option:?} contains a NUL byte")))?);
        }
        let option_ptrs: Vec<*const c_char> = c_options.iter().map(|o| o.as_ptr()).collect();

        let mut program: Program = std::ptr::null_mut();
        // SAFETY: NUL-terminated strings that outlive the call; no headers.
        let status = unsafe {
            (self.create_program)(
                &mut program,
                c_source.as_ptr(),
                c_name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        if status != SUCCESS {
            return Err(fail(format!("nvrtcCreateProgram: {}", self.describe(status))));
        }
        let program = ProgramGuard { nvrtc: self, program };
        // SAFETY: a live program; option pointers valid for the call.
        let status =
            unsafe { (self.compile_program)(program.program, option_ptrs.len() as c_int, option_ptrs.as_ptr()) };
        if status != SUCCESS {
            let log = self.read(program.program, self.program_log_size, self.program_log).unwrap_or_default();
            let log = String::from_utf8_lossy(&log).trim_end_matches('\0').trim().to_string();
            return Err(fail(format!("{}\n{log}", self.describe(status))));
        }
        let (size_fn, bytes_fn, what) =
            if cubin { (self.cubin_size, self.cubin, "CUBIN") } else { (self.ptx_size, self.ptx, "PTX") };
        self.read(program.program, size_fn, bytes_fn)
            .map_err(|status| fail(format!("reading the {what}: {}", self.describe(status))))
    }

    /// One of NVRTC's size-then-copy outputs (log, PTX, CUBIN) of `program`.
    fn read(&self, program: Program, size_fn: SizeFn, bytes_fn: BytesFn) -> Result<Vec<u8>, Status> {
        let mut size = 0usize;
        // SAFETY: a live program and an out-parameter.
        let status = unsafe { size_fn(program, &mut size) };
        if status != SUCCESS {
            return Err(status);
        }
        let mut bytes = vec![0u8; size];
        // SAFETY: `bytes` holds the `size` bytes NVRTC said it would write.
        let status = unsafe { bytes_fn(program, bytes.as_mut_ptr().cast()) };
        if status != SUCCESS {
            return Err(status);
        }
        Ok(bytes)
    }
}

/// Destroys the program however compilation ends.
struct ProgramGuard<'a> {
    nvrtc: &'a Nvrtc,
    program: Program,
}

impl Drop for ProgramGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: created by nvrtcCreateProgram and destroyed only here.
        unsafe { (self.nvrtc.destroy_program)(&mut self.program) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nvrtc(version: (i32, i32), archs: std::ops::RangeInclusive<i32>) -> Abilities {
        Abilities { version, archs: Some(archs.collect()) }
    }

    #[test]
    fn the_nvrtc_that_knows_the_gpu_compiles_machine_code_for_it() {
        let venv13 = nvrtc((13, 0), 75..=121);
        let jetpack = nvrtc((12, 6), 50..=90);
        // A Xavier (sm_72) with the project's NVRTC 13 found first: JetPack's 12.6 serves.
        assert_eq!(choose(&[venv13.clone(), jetpack.clone()], 72, (12, 6)), Ok((1, Target::Cubin("sm_72".into()))));
        // An Orin with a CUDA 13 driver: the first found.
        assert_eq!(choose(&[venv13.clone(), jetpack.clone()], 87, (13, 0)), Ok((0, Target::Cubin("sm_87".into()))));
        // An Orin whose driver is CUDA 12: NVRTC 13's code would not load, 12.6's does.
        assert_eq!(choose(&[venv13.clone(), jetpack.clone()], 87, (12, 6)), Ok((1, Target::Cubin("sm_87".into()))));
        // An NVRTC that cannot list its architectures (before 11.2) is tried for machine code.
        let old = Abilities { version: (11, 0), archs: None };
        assert_eq!(choose(&[old], 87, (12, 6)), Ok((0, Target::Cubin("sm_87".into()))));
    }

    #[test]
    fn a_gpu_newer_than_nvrtc_gets_ptx_for_the_newest_architecture_below_it() {
        let jetpack = nvrtc((12, 6), 50..=90);
        assert_eq!(choose(std::slice::from_ref(&jetpack), 120, (12, 8)), Ok((0, Target::Ptx("compute_90".into()))));
        // PTX of 12.6 needs a driver of 12.6 or newer.
        let err = choose(&[jetpack], 120, (12, 4)).unwrap_err();
        assert_eq!(err, vec!["NVRTC 12.6 makes code newer than the driver's CUDA 12.4 loads".to_string()]);
    }

    #[test]
    fn none_that_can_is_one_reason_per_nvrtc() {
        let venv13 = nvrtc((13, 0), 75..=121);
        let err = choose(std::slice::from_ref(&venv13), 72, (13, 0)).unwrap_err();
        assert_eq!(err, vec!["NVRTC 13.0 compiles for sm_75 to sm_121, not sm_72".to_string()]);
        let err = choose(&[venv13], 87, (12, 2)).unwrap_err();
        assert_eq!(err, vec!["NVRTC 13.0 makes code newer than the driver's CUDA 12.2 loads".to_string()]);
    }
}
