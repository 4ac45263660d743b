"""Checks an exported generator with the ONNX tools themselves: `onnx.checker` (full check,
with shape inference) and ONNX Runtime on the CPU.

usage: onnx_check.py MODEL INPUTS.safetensors OUTPUTS.safetensors
Every tensor in INPUTS is run through the model; OUTPUTS gets the results (as float32) under the
same names, plus `_input_type` is printed for the caller.
"""
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file


def main():
    model_path, inputs_path, outputs_path = sys.argv[1:4]
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(model_path, opts, providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, out.name) == ("image", "translated"), (inp.name, out.name)
    dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
    results = {}
    for name, x in load_file(inputs_path).items():
        y = sess.run(None, {"image": x.astype(dtype)})[0]
        assert y.dtype == dtype, (y.dtype, dtype)
        results[name] = y.astype(np.float32)
    save_file(results, outputs_path)
    print(inp.type)


if __name__ == "__main__":
    main()
