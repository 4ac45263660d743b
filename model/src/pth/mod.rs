//! PyTorch checkpoint containers: the zip format of `torch.save` (PyTorch 1.6 and later) and
//! the older legacy stream (magic number, protocol, system info, object, storage keys, raw
//! storages) in which most published CycleGAN models were saved. Yields the `state_dict`'s
//! tensors as f32 arrays, checking every claimed size against the bytes actually present.
mod error;
mod pickle;

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

pub use error::ImportError;
use error::Result;
use pickle::{DType, TensorRef, Value};

use crate::tensor::NamedTensor;

const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Reads a `.pth` file into its state dict's tensors. Nothing in the file is executed.
pub fn read_state_dict(path: &Path) -> Result<Vec<NamedTensor>> {
    let bytes = std::fs::read(path).map_err(ImportError::Read)?;
    parse_state_dict(&bytes)
}

pub fn parse_state_dict(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    if bytes.starts_with(b"PK\x03\x04") {
        read_zip(bytes)
    } else if bytes.starts_with(&[0x80]) {
        read_legacy(bytes)
    } else {
        Err("not a PyTorch checkpoint (neither a torch.save zip nor a legacy pickle stream)".into())
    }
}

fn read_zip(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(ImportError::Archive)?;
    let pkl_name = archive
        .file_names()
        .find(|n| n.ends_with("/data.pkl") || *n == "data.pkl")
        .ok_or("the zip has no data.pkl: not a torch.save checkpoint")?
        .to_string();
    let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
    let mut read_entry = |name: &str| -> Result<Vec<u8>> {
        let mut f = archive.by_name(name).map_err(|e| ImportError::Entry { name: name.into(), source: e.into() })?;
        // The entry's size comes from the file; never read past what the whole file could hold.
        let mut out = Vec::new();
        f.by_ref()
            .take(bytes.len() as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|source| ImportError::Entry { name: name.into(), source })?;
        if out.len() > bytes.len() {
            return Err(format!("{name} expands beyond the file's size").into());
        }
        Ok(out)
    };
    let pkl = read_entry(&pkl_name)?;
    let (root, _) = pickle::load(&pkl)?;
    let refs = state_dict_tensors(root)?;
    let mut storages: HashMap<String, Vec<u8>> = HashMap::new();
    for (_, t) in &refs {
        if !storages.contains_key(&t.storage) {
            let data = read_entry(&format!("{prefix}data/{}", t.storage))?;
            storages.insert(t.storage.clone(), data);
        }
    }
    materialise(refs, &storages)
}

fn read_legacy(bytes: &[u8]) -> Result<Vec<NamedTensor>> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Value> {
        let (v, used) =
            pickle::load(&bytes[pos..]).map_err(|e| ImportError::Legacy { what: what.into(), source: Box::new(e) })?;
        pos += used;
        Ok(v)
    };
    match next("magic number")? {
        Value::Bytes(b) if b == LEGACY_MAGIC => {}
        _ => return Err("not a PyTorch checkpoint (wrong magic number)".into()),
    }
    next("protocol version")?;
    next("system info")?;
    let root = next("state dict")?;
    let keys = match next("storage keys")? {
        Value::List(keys) => keys
            .into_iter()
            .map(|k| match k {
                Value::Str(s) => Ok(s),
                _ => Err("storage key is not a string".into()),
            })
            .collect::<Result<Vec<_>>>()?,
        _ => return Err("storage key list missing".into()),
    };
    let refs = state_dict_tensors(root)?;
    let elem_size: HashMap<&str, usize> = refs.iter().map(|(_, t)| (t.storage.as_str(), t.dtype.size())).collect();
    let mut storages = HashMap::new();
    for key in keys {
        let header = bytes.get(pos..pos + 8).ok_or("truncated storage data")?;
        let numel = u64::from_le_bytes(header.try_into().unwrap());
        pos += 8;
        let size = *elem_size.get(key.as_str()).ok_or_else(|| format!("storage {key} is used by no tensor"))?;
        let len = numel.checked_mul(size as u64).filter(|&l| l <= (bytes.len() - pos) as u64).ok_or_else(|| {
            format!("storage {key} claims {numel} elements, more than the file holds (truncated file?)")
        })? as usize;
        storages.insert(key, bytes[pos..pos + len].to_vec());
        pos += len;
    }
    materialise(refs, &storages)
}

/// The (name, tensor) entries of a state dict; anything else at the top is refused.
fn state_dict_tensors(root: Value) -> Result<Vec<(String, TensorRef)>> {
    let Value::Dict(items) = root else {
        return Err("the checkpoint holds no state_dict (save `model.state_dict()`, not the model)".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Value::Str(name) = k else { return Err("state_dict key is not a string".into()) };
        match v {
            Value::Tensor(t) => out.push((name, t)),
            Value::Dict(_) => {
                return Err(format!(
                    "`{name}` is a nested dict: pass the generator's own state_dict (e.g. checkpoint['{name}'] saved alone)"
                ).into());
            }
            _ => return Err(format!("`{name}` is not a tensor").into()),
        }
    }
    Ok(out)
}

fn element(bytes: &[u8], dtype: DType, i: usize) -> f32 {
    let at = |n: usize| &bytes[i * n..i * n + n];
    match dtype {
        DType::F32 => f32::from_le_bytes(at(4).try_into().unwrap()),
        DType::F64 => f64::from_le_bytes(at(8).try_into().unwrap()) as f32,
        DType::F16 => half::f16::from_le_bytes(at(2).try_into().unwrap()).to_f32(),
        DType::BF16 => half::bf16::from_le_bytes(at(2).try_into().unwrap()).to_f32(),
        DType::I64 => i64::from_le_bytes(at(8).try_into().unwrap()) as f32,
        DType::I32 => i32::from_le_bytes(at(4).try_into().unwrap()) as f32,
        DType::U8 | DType::Bool => bytes[i] as f32,
    }
}

fn materialise(refs: Vec<(String, TensorRef)>, storages: &HashMap<String, Vec<u8>>) -> Result<Vec<NamedTensor>> {
    refs.into_iter()
        .map(|(name, t)| {
            let bytes =
                storages.get(&t.storage).ok_or_else(|| format!("`{name}`: storage {} is missing", t.storage))?;
            let available = (bytes.len() / t.dtype.size()) as u64;
            let numel: u64 =
                t.size.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d as u64)).ok_or("size overflow")?;
            // The largest index the view touches must lie inside the data present.
            let extent = t
                .size
                .iter()
                .zip(&t.stride)
                .try_fold(t.offset, |acc, (&n, &s)| acc.checked_add((n.max(1) as u64 - 1).checked_mul(s as u64)?))
                .ok_or("stride overflow")?;
            if numel > 0 && extent >= available {
                return Err(format!("`{name}`: shape {:?} reaches past its storage (corrupt file)", t.size).into());
            }
            let mut data = Vec::with_capacity(numel as usize);
            let mut index = vec![0i64; t.size.len()];
            for _ in 0..numel {
                let flat = t.offset as i64 + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<i64>();
                data.push(element(bytes, t.dtype, flat as usize));
                for d in (0..index.len()).rev() {
                    index[d] += 1;
                    if index[d] < t.size[d] {
                        break;
                    }
                    index[d] = 0;
                }
            }
            Ok(NamedTensor { name, shape: t.size, data })
        })
        .collect()
}
