//! Any bytes given to the `.pth` reader end in a state dict or an error: no panic, no hang, no
//! allocation beyond the input's size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(tensors) = cyclegan_model::pth::parse_state_dict(data) {
        let _ = cyclegan_model::import::match_generator(tensors, None);
    }
});
