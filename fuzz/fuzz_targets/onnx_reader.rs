//! Any bytes given to the ONNX reader end in a model or an error, and so does reading its
//! metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = cyclegan_onnx::io::decode_model(data) {
        let _ = cyclegan_onnx::GeneratorMetadata::read_from(&model);
    }
});
