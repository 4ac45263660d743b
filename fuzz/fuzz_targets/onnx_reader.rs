//! Any bytes given to the ONNX reader end in a model or an error, and so does checking the model
//! against the generator contract (metadata, names, types, operators).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(model) = cyclegan_onnx::io::decode_model(data) {
        let _ = cyclegan_onnx::validate_generator(&model);
    }
});
