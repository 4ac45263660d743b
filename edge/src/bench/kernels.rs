//! `cyclegan-edge bench kernels`: the CUDA frame kernels' throughput on this GPU against the
//! device's own frame copy (the memory bound), for each pixel format, as a Markdown table.
use crate::Result;
use crate::backend::cuda::device::Gpu;
use crate::backend::cuda::{FrameLayout, Kernels, measure_throughput};
use crate::frame::{PixelFormat, YuvSpec};

/// One format's measurement.
#[derive(Debug, Clone)]
pub struct KernelRow {
    pub format: PixelFormat,
    pub throughput: crate::backend::cuda::Throughput,
}

/// Measures every format at `frame` size with an inference tensor of `size` (FP16, as engines run).
pub fn run(frame: (usize, usize), size: (usize, usize), iterations: usize) -> Result<(String, Vec<KernelRow>)> {
    let gpu = Gpu::open(0)?;
    let kernels = Kernels::for_context(&gpu.context)?;
    let rows = PixelFormat::ALL
        .iter()
        .map(|&format| {
            let layout = FrameLayout::packed(format, frame.0, frame.1, YuvSpec::default());
            let throughput = measure_throughput::<u16>(&kernels, &gpu.stream, &layout, size, iterations)?;
            Ok(KernelRow { format, throughput })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((format!("{}, kernels {}", gpu.describe(), kernels.arch()), rows))
}

/// The table: per format, ms and GB/s of each kernel, and the share of the copy bandwidth.
pub fn table(device: &str, frame: (usize, usize), size: (usize, usize), rows: &[KernelRow]) -> String {
    let mut out = format!(
        "{device}; frame {}x{} -> tensor {}x{} FP16\n\n| format | pre ms | pre GB/s | post ms | post GB/s | copy GB/s | pre/copy | post/copy |\n|---|---|---|---|---|---|---|---|\n",
        frame.0, frame.1, size.0, size.1
    );
    for r in rows {
        let t = &r.throughput;
        out.push_str(&format!(
            "| {} | {:.3} | {:.1} | {:.3} | {:.1} | {:.1} | {:.2} | {:.2} |\n",
            r.format.name(),
            t.preprocess_ms,
            t.preprocess_gbps,
            t.postprocess_ms,
            t.postprocess_gbps,
            t.memcpy_gbps,
            t.preprocess_gbps / t.memcpy_gbps,
            t.postprocess_gbps / t.memcpy_gbps
        ));
    }
    out
}
