//! The GPU, through the CUDA driver (libcuda, loaded at run time by cudarc): whether there is
//! one, what it is, and a context and stream on it.
use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaStream};

use crate::{Error, Result};

/// A CUDA device with a context and a stream of its own.
pub struct Gpu {
    pub context: Arc<CudaContext>,
    pub stream: Arc<CudaStream>,
    pub name: String,
    pub compute_capability: (i32, i32),
    pub total_memory: usize,
    /// Streaming multiprocessors: with the memory, what tells GPUs of one name and compute
    /// capability apart (an Orin Nano has 8, an AGX Orin 16).
    pub multiprocessors: i32,
    /// The GPU shares the host's memory and can map page-locked host memory (a Jetson): its
    /// kernels then read and write frames in place, without copies to and from device memory.
    pub integrated: bool,
}

/// Whether the CUDA driver library can be loaded at all (asked before any driver call: cudarc
/// panics on a missing library).
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the driver library by its usual names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// The CUDA release the driver supports, (12, 6) for 12.6: what code NVRTC makes it can load.
pub fn driver_version() -> Result<(i32, i32), cudarc::driver::DriverError> {
    let mut version = 0;
    // SAFETY: an out-parameter; callable before cuInit.
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut version) }.result()?;
    Ok((version / 1000, version % 1000 / 10))
}

impl Gpu {
    pub fn open(ordinal: usize) -> Result<Self> {
        if !driver_present() {
            return Err(Error::Cuda(
                "the CUDA driver (libcuda.so.1) is not installed: TensorRT needs an NVIDIA GPU and its driver \
                 (JetPack includes it); use --backend cpu"
                    .into(),
            ));
        }
        let count =
            CudaContext::device_count().map_err(|source| Error::Driver { what: "no usable GPU".into(), source })?;
        if ordinal as i32 >= count.max(0) {
            return Err(Error::Cuda(format!("GPU {ordinal} asked, {count} found; use --backend cpu")));
        }
        let driver = |what: &'static str| move |source| Error::Driver { what: what.into(), source };
        let context = CudaContext::new(ordinal).map_err(driver("creating a context"))?;
        let stream = context.new_stream().map_err(driver("creating a stream"))?;
        Ok(Self {
            name: context.name().map_err(driver("reading the GPU's name"))?,
            compute_capability: context.compute_capability().map_err(driver("reading the compute capability"))?,
            total_memory: context.total_mem().map_err(driver("reading the GPU's memory size"))?,
            multiprocessors: context
                .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
                .map_err(driver("reading the multiprocessor count"))?,
            integrated: context
                .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_INTEGRATED)
                .map_err(driver("asking whether the GPU is integrated"))?
                == 1
                && context
                    .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY)
                    .map_err(driver("asking whether the GPU maps host memory"))?
                    == 1,
            context,
            stream,
        })
    }

    /// `NVIDIA H100 (compute 9.0, 132 SMs, 79.6 GiB)`.
    pub fn describe(&self) -> String {
        let (major, minor) = self.compute_capability;
        let gib = self.total_memory as f64 / (1u64 << 30) as f64;
        let shared = if self.integrated { ", integrated" } else { "" };
        format!("{} (compute {major}.{minor}, {} SMs, {gib:.1} GiB{shared})", self.name, self.multiprocessors)
    }
}
