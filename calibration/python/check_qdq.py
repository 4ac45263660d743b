"""Checks a quantized generator with the ONNX tools themselves: `onnx.checker` (full check),
ONNX Runtime runs it, and the PSNR of its outputs against the FP32 model's on the held-out inputs
the report saved.

usage: check_qdq.py FP32.onnx INT8.onnx REPORT_DIR  -> JSON {"psnr_db", "quantize_nodes", "dequantize_nodes"}
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file


def main():
    fp32_path, int8_path, report_dir = sys.argv[1:4]
    model = onnx.load(int8_path)
    onnx.checker.check_model(model, full_check=True)
    ops = [n.op_type for n in model.graph.node]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    fp32 = ort.InferenceSession(fp32_path, opts, providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(int8_path, opts, providers=["CPUExecutionProvider"])
    inputs = load_file(f"{report_dir}/heldout.safetensors")
    # The FP16 form of a Q/DQ model (what TensorRT 11 builds) takes float16.
    dtype = np.float16 if int8.get_inputs()[0].type == "tensor(float16)" else np.float32
    psnrs = []
    for name in sorted(inputs):
        x = inputs[name]
        a = fp32.run(None, {"image": x})[0].astype(np.float64)
        b = int8.run(None, {"image": x.astype(dtype)})[0].astype(np.float64)
        mse = np.mean((a - b) ** 2)
        psnrs.append(100.0 if mse == 0 else 10 * np.log10(4.0 / mse))
    print(json.dumps({
        "psnr_db": float(np.mean(psnrs)),
        "quantize_nodes": ops.count("QuantizeLinear"),
        "dequantize_nodes": ops.count("DequantizeLinear"),
    }))


if __name__ == "__main__":
    main()
