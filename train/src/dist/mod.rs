//! Data-parallel training on libtorch's c10d, the engine of PyTorch's DistributedDataParallel:
//! a TCPStore rendezvous and ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA), through the
//! shim in train/csrc. The training loop broadcasts rank 0's weights, averages each optimizer
//! step's gradients and the step's losses, and lets rank 0 alone write.
mod ffi;
pub mod launch;
mod world;

use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tch::{Device, Tensor};

pub use world::World;

use crate::error::{Error, Result};

/// PyTorch DDP's default bucket size (`bucket_cap_mb` 25).
const BUCKET_BYTES: usize = 25 << 20;

/// Which c10d backend carries the collectives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// NCCL for a CUDA device, Gloo for the CPU.
    #[default]
    Auto,
    Gloo,
    Nccl,
}

/// How a data-parallel run's ranks talk.
#[derive(Debug, Clone, PartialEq)]
pub struct DistOptions {
    pub backend: Backend,
    /// How long a rank waits for the others (rendezvous, each collective) before it stops.
    pub timeout: Duration,
}

impl Default for DistOptions {
    fn default() -> Self {
        Self { backend: Backend::Auto, timeout: Duration::from_secs(300) }
    }
}

/// Takes a message the shim (any of train/csrc) allocated.
pub(crate) fn take(p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: the shim returns NUL-terminated strings from malloc, freed here once.
    let s = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    unsafe { ffi::cg_free(p.cast()) };
    s
}

/// This process's membership of the run's process group.
pub struct Group {
    raw: NonNull<ffi::CgGroup>,
    world: World,
}

// SAFETY: c10d's process groups and stores are thread-safe; the loop uses the group from one
// thread at a time.
unsafe impl Send for Group {}
unsafe impl Sync for Group {}

impl Group {
    /// Joins the ranks of `world` (every rank calls this; rank 0 serves the rendezvous).
    pub fn join(world: &World, options: &DistOptions, device: Device) -> Result<Self> {
        let nccl = match (options.backend, device) {
            (Backend::Nccl, Device::Cpu) => {
                return Err(Error::Distributed(
                    "--dist-backend nccl needs a CUDA device (--device cuda); the CPU uses gloo".into(),
                ));
            }
            (Backend::Nccl, _) | (Backend::Auto, Device::Cuda(_)) => true,
            _ => false,
        };
        // SAFETY: no arguments.
        if nccl && unsafe { ffi::cg_has_nccl() } == 0 {
            return Err(Error::Distributed(
                "this cyclegan-train was built without NCCL (no CUDA/NCCL headers at build time): use --dist-backend \
                 gloo, or rebuild with PyTorch's CUDA wheel in .venv"
                    .into(),
            ));
        }
        let device_index = match device {
            Device::Cuda(i) => i as i32,
            _ => 0,
        };
        let addr =
            CString::new(world.addr.as_str()).map_err(|_| Error::Distributed("MASTER_ADDR holds a NUL".into()))?;
        let mut err = std::ptr::null_mut();
        // SAFETY: valid C strings and out-pointer; the shim copies what it keeps.
        let raw = unsafe {
            ffi::cg_group_new(
                addr.as_ptr(),
                world.port,
                world.rank as i32,
                world.size as i32,
                if nccl { ffi::CG_NCCL } else { ffi::CG_GLOO },
                device_index,
                options.timeout.as_millis() as i64,
                &mut err,
            )
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(Self { raw, world: world.clone() }),
            None => Err(Error::Distributed(take(err))),
        }
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    /// Turns a failed collective into a message that names the rank at fault.
    fn collective(&self, what: &str, call: impl FnOnce(*mut *mut c_char) -> i32) -> Result<()> {
        let mut err = std::ptr::null_mut();
        if call(&mut err) == 0 {
            return Ok(());
        }
        let cause = take(err);
        // SAFETY: a live group.
        let diagnosis = take(unsafe { ffi::cg_diagnose(self.raw.as_ptr()) });
        Err(Error::Collective(format!(
            "rank {}: {what} failed: {diagnosis}. Stopped; the last checkpoint is intact (c10d: {cause})",
            self.world.rank
        )))
    }

    fn pointers(tensors: &mut [Tensor]) -> Vec<*mut c_void> {
        tensors.iter_mut().map(|t| t.as_mut_ptr().cast()).collect()
    }

    /// Replaces each tensor by its mean over the ranks, in place.
    pub fn average(&self, tensors: &[Tensor], what: &str) -> Result<()> {
        let mut handles: Vec<Tensor> = tensors.iter().map(Tensor::shallow_clone).collect();
        let ptrs = Self::pointers(&mut handles);
        // SAFETY: the pointers are at::Tensor* that live (in `handles`) for the call.
        self.collective(what, |err| unsafe {
            ffi::cg_average(self.raw.as_ptr(), ptrs.as_ptr(), ptrs.len(), BUCKET_BYTES, err)
        })
    }

    /// Gives every rank rank 0's values of `tensors`.
    pub fn broadcast(&self, tensors: &[Tensor], what: &str) -> Result<()> {
        let mut handles: Vec<Tensor> = tensors.iter().map(Tensor::shallow_clone).collect();
        let ptrs = Self::pointers(&mut handles);
        // SAFETY: as in `average`.
        self.collective(what, |err| unsafe { ffi::cg_broadcast(self.raw.as_ptr(), ptrs.as_ptr(), ptrs.len(), err) })
    }

    pub fn barrier(&self, what: &str) -> Result<()> {
        // SAFETY: a live group.
        self.collective(what, |err| unsafe { ffi::cg_barrier(self.raw.as_ptr(), err) })
    }

    /// Rank 0's `value` under `key`: rank 0 publishes its own, the others wait for it.
    pub fn rank0_value(&self, key: &str, value: &str) -> Result<String> {
        let key = CString::new(format!("cyclegan/{key}")).expect("keys have no NUL");
        let mut err = std::ptr::null_mut();
        let failed = |err| Error::Distributed(format!("rank {}: the rendezvous store: {}", self.world.rank, take(err)));
        if self.world.rank == 0 {
            // SAFETY: valid key and value for the call.
            let rc = unsafe {
                ffi::cg_store_set(self.raw.as_ptr(), key.as_ptr(), value.as_ptr().cast(), value.len(), &mut err)
            };
            return if rc == 0 { Ok(value.to_owned()) } else { Err(failed(err)) };
        }
        let (mut out, mut len) = (std::ptr::null_mut(), 0usize);
        // SAFETY: valid key and out-pointers; `out` is freed below.
        if unsafe { ffi::cg_store_get(self.raw.as_ptr(), key.as_ptr(), &mut out, &mut len, &mut err) } != 0 {
            return Err(failed(err));
        }
        // SAFETY: the shim returned `len` bytes at `out`.
        let bytes = unsafe { std::slice::from_raw_parts(out.cast::<u8>(), len) }.to_vec();
        unsafe { ffi::cg_free(out.cast()) };
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Tells the other ranks why this one stops (they name it when their collective fails).
    pub fn fail(&self, message: &str) {
        let message = CString::new(message.replace('\0', " ")).expect("NULs replaced");
        // SAFETY: a live group and a C string.
        unsafe { ffi::cg_mark_failed(self.raw.as_ptr(), message.as_ptr()) };
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: created by cg_group_new, freed once.
        unsafe { ffi::cg_group_free(self.raw.as_ptr()) };
    }
}

/// The group of the run in progress, as PyTorch's default process group: what the optimizer
/// steps of any network average their gradients over.
static CURRENT: Mutex<Option<Arc<Group>>> = Mutex::new(None);

pub fn current() -> Option<Arc<Group>> {
    CURRENT.lock().expect("not poisoned").clone()
}

/// Makes `group` current until the guard is dropped.
pub fn activate(group: Arc<Group>) -> Active {
    *CURRENT.lock().expect("not poisoned") = Some(group);
    Active
}

pub struct Active;

impl Drop for Active {
    fn drop(&mut self) {
        CURRENT.lock().expect("not poisoned").take();
    }
}

/// Averages the gradients of `params` over the ranks of the current group, if any.
pub fn average_gradients(params: impl Iterator<Item = Tensor>, what: &str) -> Result<()> {
    match current() {
        Some(group) => group.average(&params.collect::<Vec<_>>(), what),
        None => Ok(()),
    }
}

/// The first setting (dotted key) whose value differs between two TOML documents, with both
/// values.
pub fn first_difference(a: &str, b: &str) -> Option<String> {
    fn walk(prefix: &str, a: &toml::Value, b: &toml::Value) -> Option<String> {
        match (a, b) {
            (toml::Value::Table(ta), toml::Value::Table(tb)) => {
                let mut keys: Vec<&String> = ta.keys().chain(tb.keys()).collect();
                keys.sort();
                keys.dedup();
                keys.into_iter().find_map(|k| {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    match (ta.get(k), tb.get(k)) {
                        (Some(x), Some(y)) => walk(&path, x, y),
                        (x, y) => Some(format!("{path} = {} vs {}", show(x), show(y))),
                    }
                })
            }
            _ if a == b => None,
            _ => Some(format!("{prefix} = {a} vs {b}")),
        }
    }
    fn show(v: Option<&toml::Value>) -> String {
        v.map_or_else(|| "(unset)".into(), ToString::to_string)
    }
    let parse = |s: &str| s.parse::<toml::Table>().map(toml::Value::Table);
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => walk("", &x, &y),
        _ => (a != b).then(|| "the configuration text".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_first_differing_setting() {
        let a = "[train]\nlr = 0.0002\nseed = 1\n[data]\nbatch_size = 1\n";
        assert_eq!(first_difference(a, a), None);
        let b = "[train]\nlr = 0.0002\nseed = 1\n[data]\nbatch_size = 2\n";
        assert_eq!(first_difference(a, b).as_deref(), Some("data.batch_size = 1 vs 2"));
        let c = "[train]\nlr = 0.0002\n[data]\nbatch_size = 1\n";
        assert_eq!(first_difference(a, c).as_deref(), Some("train.seed = 1 vs (unset)"));
    }
}
