"""ONNX Runtime from Python, the peer `cyclegan-edge bench` and the tests compare against.

usage:
  ort_peer.py bench MODEL WIDTH HEIGHT THREADS ITERS WARMUP   -> JSON {"median_ms", "version"}
  ort_peer.py run MODEL THREADS IN.f32 OUT.f32 N C H W        -> runs raw little-endian float32
  ort_peer.py half MODEL OUT                                   -> the same graph in float16
"""
import json
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort


def session(model, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def input_dtype(sess):
    return np.float16 if sess.get_inputs()[0].type == "tensor(float16)" else np.float32


def bench(model, width, height, threads, iters, warmup):
    sess = session(model, threads)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 3, int(height), int(width))).astype(input_dtype(sess))
    for _ in range(int(warmup)):
        sess.run(None, {"image": x})
    times = []
    for _ in range(int(iters)):
        t = time.perf_counter()
        sess.run(None, {"image": x})
        times.append((time.perf_counter() - t) * 1e3)
    print(json.dumps({"median_ms": statistics.median(times), "version": ort.__version__}))


def run(model, threads, inp, out, *shape):
    sess = session(model, threads)
    x = np.fromfile(inp, dtype="<f4").reshape([int(s) for s in shape])
    y = sess.run(None, {"image": x.astype(input_dtype(sess))})[0]
    y.astype("<f4").tofile(out)


def half(model, out):
    import onnx
    from onnx import TensorProto, numpy_helper

    m = onnx.load(model)
    for i, t in enumerate(m.graph.initializer):
        if t.data_type == TensorProto.FLOAT:
            h = numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float16), t.name)
            m.graph.initializer[i].CopyFrom(h)
    for v in list(m.graph.input) + list(m.graph.output) + list(m.graph.value_info):
        if v.type.tensor_type.elem_type == TensorProto.FLOAT:
            v.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, out)


if __name__ == "__main__":
    {"bench": bench, "run": run, "half": half}[sys.argv[1]](*sys.argv[2:])
