//! The c10d shim's C interface (train/csrc/c10d.h), compiled by build.rs.
use std::ffi::{c_char, c_int, c_void};

#[repr(C)]
pub struct CgGroup {
    _opaque: [u8; 0],
}

pub const CG_GLOO: c_int = 0;
pub const CG_NCCL: c_int = 1;

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    pub fn cg_group_new(
        addr: *const c_char,
        port: u16,
        rank: c_int,
        world: c_int,
        backend: c_int,
        device_index: c_int,
        timeout_ms: i64,
        err: *mut *mut c_char,
    ) -> *mut CgGroup;
    pub fn cg_group_free(group: *mut CgGroup);
    pub fn cg_average(
        group: *mut CgGroup,
        tensors: *const *mut c_void,
        n: usize,
        bucket_bytes: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn cg_broadcast(group: *mut CgGroup, tensors: *const *mut c_void, n: usize, err: *mut *mut c_char) -> c_int;
    pub fn cg_barrier(group: *mut CgGroup, err: *mut *mut c_char) -> c_int;
    pub fn cg_store_set(
        group: *mut CgGroup,
        key: *const c_char,
        value: *const c_char,
        len: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn cg_store_get(
        group: *mut CgGroup,
        key: *const c_char,
        value: *mut *mut c_char,
        len: *mut usize,
        err: *mut *mut c_char,
    ) -> c_int;
    pub fn cg_mark_failed(group: *mut CgGroup, message: *const c_char);
    pub fn cg_diagnose(group: *mut CgGroup) -> *mut c_char;
    pub fn cg_has_nccl() -> c_int;
    pub fn cg_free(p: *mut c_void);
}
