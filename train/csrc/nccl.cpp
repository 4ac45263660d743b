// The NCCL backend, in its own translation unit: it needs CUDA's and NCCL's headers, which a
// build without them (csrc/nccl_absent.cpp) does without.
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

c10::intrusive_ptr<c10d::Backend> cg_make_nccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int world,
                                               int device_index, std::chrono::milliseconds timeout) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
    group->setBoundDeviceId(at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(device_index)));
    return group;
}

bool cg_nccl_built() { return true; }
