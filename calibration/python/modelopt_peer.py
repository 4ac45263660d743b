"""The peer of `cyclegan-calib`: NVIDIA's Model Optimizer quantizes the same FP32 export on the
same calibration tensors (`cyclegan-calib --report DIR --save-inputs` writes them), with its
`max` and `entropy` methods, on ONNX Runtime's CPU provider. Its outputs are left as it writes
them; `cyclegan-calib evaluate --int8 OUT_DIR/modelopt-max.onnx ...` compares them with ours.

usage: modelopt_peer.py FP32.onnx CALIBRATION.safetensors OUT_DIR [METHOD ...]
  -> OUT_DIR/modelopt-METHOD.onnx for each METHOD (default: max entropy), and one JSON line
     {"METHOD": seconds, ...} on stdout
"""
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import onnx
from safetensors.numpy import load_file


def with_kernel_shapes(src, dst):
    """Copies the model, giving every convolution its `kernel_shape` (optional in ONNX, and
    missing from older exports), which Model Optimizer reads to decide what it quantizes."""
    model = onnx.load(src)
    weights = {t.name: list(t.dims) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("Conv", "ConvTranspose") and not any(a.name == "kernel_shape" for a in node.attribute):
            node.attribute.append(onnx.helper.make_attribute("kernel_shape", weights[node.input[1]][2:]))
    onnx.save(model, dst)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    fp32, inputs, out_dir = sys.argv[1:4]
    methods = sys.argv[4:] or ["max", "entropy"]
    tensors = load_file(inputs)
    shapes = {t.shape for t in tensors.values()}
    if len(shapes) != 1:
        sys.exit(f"{inputs}: inputs of several shapes {sorted(shapes)}; calibrate with a fixed --size")
    data = np.concatenate([tensors[k] for k in sorted(tensors)], axis=0)
    from modelopt.onnx.quantization import quantize

    os.makedirs(out_dir, exist_ok=True)
    seconds = {}
    for method in methods:
        with tempfile.TemporaryDirectory() as tmp:
            # Model Optimizer rewrites the model it is given (shape inference, opset): give it a copy.
            work = os.path.join(tmp, "fp32.onnx")
            with_kernel_shapes(fp32, work)
            start = time.perf_counter()
            quantize(
                work,
                quantize_mode="int8",
                calibration_data={"image": data},
                calibration_method=method,
                output_path=os.path.join(tmp, "int8.onnx"),
                calibration_eps=["cpu"],
            )
            seconds[method] = time.perf_counter() - start
            shutil.move(os.path.join(tmp, "int8.onnx"), os.path.join(out_dir, f"modelopt-{method}.onnx"))
    print(json.dumps(seconds))


if __name__ == "__main__":
    main()
