// Stands in for nccl.cpp where CUDA's or NCCL's headers were not found at build time.
#include <torch/csrc/distributed/c10d/Backend.hpp>

c10::intrusive_ptr<c10d::Backend> cg_make_nccl(const c10::intrusive_ptr<c10d::Store>&, int, int, int,
                                               std::chrono::milliseconds) {
    TORCH_CHECK(false, "this cyclegan-train was built without NCCL (no CUDA/NCCL headers were found at build time); "
                       "use --dist-backend gloo, or rebuild with PyTorch's CUDA wheel in .venv");
}

bool cg_nccl_built() { return false; }
