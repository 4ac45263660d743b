//! Reading and writing `.onnx` files. Reading is bounded (size limit, protobuf decoding never
//! trusts lengths beyond the buffer) and writing is atomic (temporary file, then rename).
use std::path::Path;

use prost::Message;

use crate::pb::ModelProto;
use crate::{Error, Result};

/// Generators are tens of MB at most; refuse to read anything absurdly large.
pub const MAX_MODEL_BYTES: u64 = 2 << 30;

pub fn decode_model(bytes: &[u8]) -> Result<ModelProto> {
    let model = ModelProto::decode(bytes)?;
    if model.graph.is_none() {
        return Err(Error::NoGraph);
    }
    Ok(model)
}

pub fn encode_model(model: &ModelProto) -> Vec<u8> {
    model.encode_to_vec()
}

/// Reads a file of at most [`MAX_MODEL_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let read_error = |source| Error::Read { path: path.to_path_buf(), source };
    let size = std::fs::metadata(path).map_err(read_error)?.len();
    if size > MAX_MODEL_BYTES {
        return Err(Error::TooLarge { path: path.to_path_buf(), size });
    }
    std::fs::read(path).map_err(read_error)
}

pub fn read_model(path: &Path) -> Result<ModelProto> {
    decode_model(&read_bounded(path)?).map_err(|e| e.in_file(path))
}

pub fn write_model(path: &Path, model: &ModelProto) -> Result<()> {
    write_atomic(path, &encode_model(model))
}

/// Writes `bytes` to `path` through a temporary file beside it, synced, then renamed: a crash
/// leaves the old file or none, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let write_error = |source| Error::Write { path: path.to_path_buf(), source };
    let file_name = path
        .file_name()
        .ok_or_else(|| write_error(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")))?;
    let tmp = path.with_file_name(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        write_error(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_truncation_are_errors_not_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.onnx");
        std::fs::write(&path, b"\x0a\xff\xff\xff\xff\x0fgarbage").unwrap();
        assert!(read_model(&path).unwrap_err().to_string().contains("x.onnx"));
        let model = ModelProto { ir_version: 8, graph: Some(Default::default()), ..Default::default() };
        write_model(&path, &model).unwrap();
        assert_eq!(read_model(&path).unwrap(), model);
        let bytes = encode_model(&model);
        std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_model(&path).is_err());
    }
}
