//! Parses `cpu` / `cuda` / `cuda:N` and checks that the device exists.
use tch::Device;

use crate::error::{Error, Result};

/// Parses a device name without touching CUDA.
pub fn parse(name: &str) -> Result<Device> {
    let bad = |message: &str| Error::Device { device: name.into(), message: message.into() };
    match name {
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => {
            let index = name.strip_prefix("cuda:").ok_or_else(|| bad("expected `cpu`, `cuda` or `cuda:N`"))?;
            let index: usize = index.parse().map_err(|_| bad("the CUDA index must be a number, as in `cuda:0`"))?;
            Ok(Device::Cuda(index))
        }
    }
}

/// Parses a device name and makes sure this machine has it.
pub fn open(name: &str) -> Result<Device> {
    let device = parse(name)?;
    if let Device::Cuda(index) = device {
        let count = tch::Cuda::device_count() as usize;
        if index >= count {
            let message = if count == 0 {
                "this machine has no CUDA device libtorch can use; train with --device cpu".into()
            } else {
                format!("this machine has {count} CUDA device(s): cuda:0..cuda:{}", count - 1)
            };
            return Err(Error::Device { device: name.into(), message });
        }
    }
    Ok(device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!(parse("cpu").unwrap(), Device::Cpu);
        assert_eq!(parse("cuda").unwrap(), Device::Cuda(0));
        assert_eq!(parse("cuda:3").unwrap(), Device::Cuda(3));
        assert!(parse("cuda:x").is_err());
        assert!(parse("gpu").is_err());
    }

    #[test]
    fn missing_cuda_device_is_a_clear_error() {
        let n = tch::Cuda::device_count();
        let err = open(&format!("cuda:{n}")).unwrap_err().to_string();
        assert!(err.contains(&format!("cuda:{n}")) && err.contains("CUDA"), "{err}");
    }
}
