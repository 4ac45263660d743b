//! A restricted unpickler for PyTorch checkpoints. It understands only what a `state_dict`
//! needs (dicts, lists, tuples, strings, numbers, tensors and their storages) and never runs
//! anything: a GLOBAL outside a short allow-list, or an opcode outside the data subset, ends
//! reading with an error. This is the equivalent of `torch.load(weights_only=True)`.
use std::collections::HashMap;

use super::error::Result;

/// Element types of PyTorch storages we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    U8,
    Bool,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::U8 | DType::Bool => 1,
        }
    }

    fn from_storage_class(name: &str) -> Option<Self> {
        Some(match name {
            "FloatStorage" => DType::F32,
            "DoubleStorage" => DType::F64,
            "HalfStorage" => DType::F16,
            "BFloat16Storage" => DType::BF16,
            "LongStorage" => DType::I64,
            "IntStorage" => DType::I32,
            "ByteStorage" => DType::U8,
            "BoolStorage" => DType::Bool,
            _ => return None,
        })
    }
}

/// Where a tensor's numbers live: a storage (by key) and a strided view into it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub storage: String,
    pub dtype: DType,
    /// Elements in the storage, as the pickle claims (checked against the data later).
    pub storage_numel: u64,
    pub offset: u64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    /// An allowed callable, by `module.name`.
    Global(String),
    Storage {
        key: String,
        dtype: DType,
        numel: u64,
    },
    Tensor(TensorRef),
}

/// `_rebuild_tensor` is how PyTorch before 0.4 saved tensors (most published CycleGAN models).
const ALLOWED_GLOBALS: [&str; 4] = [
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
];

/// Memo entries and nesting are bounded; everything else is bounded by the input's length.
const MAX_MEMO: usize = 1 << 20;
const MAX_STACK: usize = 1 << 20;

enum Item {
    Mark,
    Value(Value),
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Value>,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or("truncated pickle")?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn line(&mut self) -> Result<String> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or("truncated pickle (unterminated line)")?;
        let s = std::str::from_utf8(&rest[..n]).map_err(|_| "invalid UTF-8 in a GLOBAL")?.to_string();
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<Value> {
        let bytes = self.take(n)?;
        Ok(Value::Str(std::str::from_utf8(bytes).map_err(|_| "invalid UTF-8 string")?.to_string()))
    }

    fn push(&mut self, v: Value) -> Result<()> {
        if self.stack.len() >= MAX_STACK {
            return Err("pickle stack too deep".into());
        }
        self.stack.push(Item::Value(v));
        Ok(())
    }

    fn pop(&mut self) -> Result<Value> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => Err("unexpected MARK on the pickle stack".into()),
            None => Err("pickle stack underflow".into()),
        }
    }

    fn top(&mut self) -> Result<&mut Value> {
        match self.stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => Err("pickle stack underflow".into()),
        }
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Item::Mark) => break,
                Some(Item::Value(v)) => items.push(v),
                None => return Err("pickle MARK missing".into()),
            }
        }
        items.reverse();
        Ok(items)
    }

    fn memo_put(&mut self, key: u32) -> Result<()> {
        if self.memo.len() >= MAX_MEMO {
            return Err("pickle memo too large".into());
        }
        let v = match self.stack.last() {
            Some(Item::Value(v)) => v.clone(),
            _ => return Err("pickle PUT with nothing to store".into()),
        };
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<()> {
        let v = self.memo.get(&key).cloned().ok_or("pickle GET of an unknown memo entry")?;
        self.push(v)
    }

    fn global(&mut self, module: &str, name: &str) -> Result<Value> {
        let full = format!("{module}.{name}");
        // A GPU storage's bytes are saved like a CPU one's.
        if (module == "torch" || module == "torch.cuda")
            && let Some(dtype) = DType::from_storage_class(name)
        {
            // Storage classes only ever appear inside persistent ids, as type tags.
            return Ok(Value::Tuple(vec![Value::Str("storage-type".into()), Value::Int(dtype as i64)]));
        }
        if ALLOWED_GLOBALS.contains(&full.as_str()) {
            return Ok(Value::Global(full));
        }
        Err(format!(
            "refusing to load: the pickle references `{full}`, which a plain state_dict of tensors never needs \
             (it could run code); only tensors and state-dict containers are read"
        )
        .into())
    }
}

fn dtype_of_tag(v: &Value) -> Option<DType> {
    const ALL: [DType; 8] =
        [DType::F32, DType::F64, DType::F16, DType::BF16, DType::I64, DType::I32, DType::U8, DType::Bool];
    match v {
        Value::Tuple(t) if t.len() == 2 && t[0] == Value::Str("storage-type".into()) => match t[1] {
            Value::Int(i) => ALL.iter().copied().find(|d| *d as i64 == i),
            _ => None,
        },
        _ => None,
    }
}

fn int(v: &Value, what: &str) -> Result<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        _ => Err(format!("{what} is not an integer").into()),
    }
}

fn ints(v: &Value, what: &str) -> Result<Vec<i64>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items.iter().map(|i| int(i, what)).collect(),
        _ => Err(format!("{what} is not a tuple of integers").into()),
    }
}

/// `('storage', <storage class>, key, location, numel[, view metadata])` to a storage.
fn persistent_load(pid: Value) -> Result<Value> {
    let Value::Tuple(t) = pid else { return Err("persistent id is not a tuple".into()) };
    if t.len() < 5 || t[0] != Value::Str("storage".into()) {
        return Err("persistent id is not a tensor storage".into());
    }
    let dtype = dtype_of_tag(&t[1]).ok_or("persistent id names an unsupported storage type")?;
    let key = match &t[2] {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => return Err("storage key is not a string".into()),
    };
    let numel = int(&t[4], "storage size")?;
    if numel < 0 {
        return Err("negative storage size".into());
    }
    Ok(Value::Storage { key, dtype, numel: numel as u64 })
}

fn call(callable: Value, args: Value) -> Result<Value> {
    let Value::Global(name) = callable else { return Err("REDUCE on something that is not callable".into()) };
    let Value::Tuple(args) = args else { return Err("REDUCE arguments are not a tuple".into()) };
    match name.as_str() {
        "collections.OrderedDict" => Ok(Value::Dict(Vec::new())),
        "torch._utils._rebuild_tensor" | "torch._utils._rebuild_tensor_v2" => {
            if args.len() < 4 {
                return Err("a tensor needs storage, offset, size and stride".into());
            }
            let Value::Storage { key, dtype, numel } = &args[0] else {
                return Err("tensor without a storage".into());
            };
            let offset = int(&args[1], "tensor offset")?;
            let size = ints(&args[2], "tensor size")?;
            let stride = ints(&args[3], "tensor stride")?;
            if offset < 0 || size.len() != stride.len() || size.iter().chain(&stride).any(|&v| v < 0) {
                return Err("tensor with a negative offset, size or stride".into());
            }
            Ok(Value::Tensor(TensorRef {
                storage: key.clone(),
                dtype: *dtype,
                storage_numel: *numel,
                offset: offset as u64,
                size,
                stride,
            }))
        }
        "torch._utils._rebuild_parameter" => match args.into_iter().next() {
            Some(t @ Value::Tensor(_)) => Ok(t),
            _ => Err("_rebuild_parameter without a tensor".into()),
        },
        other => Err(format!("refusing to call `{other}`").into()),
    }
}

/// Reads one pickle from the start of `data`; returns its value and the bytes it used.
pub fn load(data: &[u8]) -> Result<(Value, usize)> {
    let mut m = Machine { data, pos: 0, stack: Vec::new(), memo: HashMap::new() };
    loop {
        let op = m.u8()?;
        match op {
            0x80 => {
                let proto = m.u8()?;
                if proto > 5 {
                    return Err(format!("pickle protocol {proto} is not supported").into());
                }
            }
            0x95 => {
                m.u64()?;
            }
            b'.' => {
                let v = m.pop()?;
                return Ok((v, m.pos));
            }
            b'(' => m.stack.push(Item::Mark),
            b'}' => m.push(Value::Dict(Vec::new()))?,
            b']' => m.push(Value::List(Vec::new()))?,
            b')' => m.push(Value::Tuple(Vec::new()))?,
            b'N' => m.push(Value::None)?,
            0x88 => m.push(Value::Bool(true))?,
            0x89 => m.push(Value::Bool(false))?,
            b'J' => {
                let v = i32::from_le_bytes(m.take(4)?.try_into().unwrap());
                m.push(Value::Int(v as i64))?
            }
            b'K' => {
                let v = m.u8()?;
                m.push(Value::Int(v as i64))?
            }
            b'M' => {
                let v = u16::from_le_bytes(m.take(2)?.try_into().unwrap());
                m.push(Value::Int(v as i64))?
            }
            0x8a => {
                let n = m.u8()? as usize;
                let bytes = m.take(n)?;
                if n > 8 {
                    // Only PyTorch's legacy magic number is this long; keep it as a marker.
                    m.push(Value::Bytes(bytes.to_vec()))?
                } else {
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) { [0xffu8; 8] } else { [0u8; 8] };
                    buf[..n].copy_from_slice(bytes);
                    m.push(Value::Int(i64::from_le_bytes(buf)))?
                }
            }
            b'G' => {
                let v = f64::from_be_bytes(m.take(8)?.try_into().unwrap());
                m.push(Value::Float(v))?
            }
            b'X' => {
                let n = m.u32()? as usize;
                let v = m.utf8(n)?;
                m.push(v)?
            }
            0x8c => {
                let n = m.u8()? as usize;
                let v = m.utf8(n)?;
                m.push(v)?
            }
            0x8d => {
                let n = usize::try_from(m.u64()?).map_err(|_| "string too long")?;
                let v = m.utf8(n)?;
                m.push(v)?
            }
            b'C' => {
                let n = m.u8()? as usize;
                let v = m.take(n)?.to_vec();
                m.push(Value::Bytes(v))?
            }
            b'B' => {
                let n = m.u32()? as usize;
                let v = m.take(n)?.to_vec();
                m.push(Value::Bytes(v))?
            }
            b'q' => {
                let k = m.u8()? as u32;
                m.memo_put(k)?
            }
            b'r' => {
                let k = m.u32()?;
                m.memo_put(k)?
            }
            0x94 => {
                let k = m.memo.len() as u32;
                m.memo_put(k)?
            }
            b'h' => {
                let k = m.u8()? as u32;
                m.memo_get(k)?
            }
            b'j' => {
                let k = m.u32()?;
                m.memo_get(k)?
            }
            b't' => {
                let items = m.pop_to_mark()?;
                m.push(Value::Tuple(items))?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = (0..n).map(|_| m.pop()).collect::<Result<Vec<_>>>()?;
                items.reverse();
                m.push(Value::Tuple(items))?
            }
            b'c' => {
                let module = m.line()?;
                let name = m.line()?;
                let v = m.global(&module, &name)?;
                m.push(v)?
            }
            0x93 => {
                let name = m.pop()?;
                let module = m.pop()?;
                let (Value::Str(module), Value::Str(name)) = (module, name) else {
                    return Err("STACK_GLOBAL without strings".into());
                };
                let v = m.global(&module, &name)?;
                m.push(v)?
            }
            b'Q' => {
                let pid = m.pop()?;
                let v = persistent_load(pid)?;
                m.push(v)?
            }
            b'R' => {
                let args = m.pop()?;
                let callable = m.pop()?;
                let v = call(callable, args)?;
                m.push(v)?
            }
            b'b' => {
                let _state = m.pop()?;
                match m.top()? {
                    // OrderedDict state carries `_metadata` (module versions): not needed.
                    Value::Dict(_) | Value::Tensor(_) => {}
                    _ => return Err("BUILD on an object that is not a dict".into()),
                }
            }
            b's' => {
                let v = m.pop()?;
                let k = m.pop()?;
                match m.top()? {
                    Value::Dict(d) => d.push((k, v)),
                    _ => return Err("SETITEM on something that is not a dict".into()),
                }
            }
            b'u' => {
                let items = m.pop_to_mark()?;
                if items.len() % 2 != 0 {
                    return Err("SETITEMS with an odd number of items".into());
                }
                let mut it = items.into_iter();
                let mut pairs = Vec::new();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                match m.top()? {
                    Value::Dict(d) => d.extend(pairs),
                    _ => return Err("SETITEMS on something that is not a dict".into()),
                }
            }
            b'a' => {
                let v = m.pop()?;
                match m.top()? {
                    Value::List(l) => l.push(v),
                    _ => return Err("APPEND on something that is not a list".into()),
                }
            }
            b'e' => {
                let items = m.pop_to_mark()?;
                match m.top()? {
                    Value::List(l) => l.extend(items),
                    _ => return Err("APPENDS on something that is not a list".into()),
                }
            }
            other => {
                return Err(format!(
                    "refusing to load: pickle opcode 0x{other:02x} at byte {} is outside the data-only subset",
                    m.pos - 1
                )
                .into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_containers_and_numbers() {
        // pickle.dumps({'a': [1, -2, 300, 70000], 'b': (True, None, 1.5)}, protocol=2)
        let data = b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM,\x01J\x70\x11\x01\x00eX\x01\x00\x00\x00bq\x03\x88N G?\xf8\x00\x00\x00\x00\x00\x00\x87q\x04u.";
        let data: Vec<u8> = data.iter().copied().filter(|&b| b != b' ').collect();
        let (v, used) = load(&data).unwrap();
        assert_eq!(used, data.len());
        let Value::Dict(d) = v else { panic!("{v:?}") };
        assert_eq!(d[0].1, Value::List(vec![Value::Int(1), Value::Int(-2), Value::Int(300), Value::Int(70000)]));
        assert_eq!(d[1].1, Value::Tuple(vec![Value::Bool(true), Value::None, Value::Float(1.5)]));
    }

    #[test]
    fn refuses_code_execution() {
        // pickle.dumps of an object whose __reduce__ returns (os.system, ('touch /tmp/x',))
        let data = b"\x80\x02cposix\nsystem\nq\x00X\x0c\x00\x00\x00touch /tmp/xq\x01\x85q\x02Rq\x03.";
        let err = load(data).unwrap_err().to_string();
        assert!(err.contains("posix.system") && err.contains("refusing"), "{err}");
        let err = load(b"\x80\x02(S'ls'\nios\nsystem\n.").unwrap_err().to_string();
        assert!(err.contains("refusing"), "{err}");
    }

    #[test]
    fn truncated_and_malformed_input_is_an_error() {
        for data in
            [&b""[..], b"\x80", b"\x80\x02X\xff\xff\xff\x7f", b"\x80\x02h\x05.", b"\x80\x02t.", b"\x80\x02K\x01s."]
        {
            assert!(load(data).is_err(), "{data:?}");
        }
    }
}
