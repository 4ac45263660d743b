//! A tensor as this crate holds it: a name, a shape and f32 values, whatever it was read from
//! (a `.pth`, a checkpoint's safetensors).

/// One named tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: Vec<f32>,
}
