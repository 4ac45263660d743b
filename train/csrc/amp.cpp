// Mixed precision's gradient unscaling as PyTorch's GradScaler does it: one fused
// _amp_foreach_non_finite_check_and_unscale_ per device and dtype, and a single read of the
// "found inf" flag, instead of a host round trip per gradient tensor.
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

namespace {

char* dup_message(const std::exception& e) {
    auto c10 = dynamic_cast<const c10::Error*>(&e);
    std::string s = c10 ? c10->what_without_backtrace() : e.what();
    char* p = static_cast<char*>(std::malloc(s.size() + 1));
    std::memcpy(p, s.c_str(), s.size() + 1);
    return p;
}

}  // namespace

extern "C" {

// Multiplies each tensor (at::Tensor*) by inv_scale in place; returns 1 when all values were
// finite, 0 when any was inf or NaN, -1 with *err set (free with cg_free) on failure.
int cg_amp_unscale(void* const* tensors, size_t n, double inv_scale, char** err) {
    try {
        at::NoGradGuard no_grad;
        // The fused kernel takes tensors of one device and dtype; GradScaler groups them so too.
        std::map<std::tuple<c10::DeviceType, c10::DeviceIndex, c10::ScalarType>, std::vector<at::Tensor>> groups;
        for (size_t i = 0; i < n; i++) {
            const at::Tensor& t = *static_cast<at::Tensor*>(tensors[i]);
            if (!t.defined()) continue;
            groups[{t.device().type(), t.device().index(), t.scalar_type()}].push_back(t);
        }
        at::Tensor found;
        for (auto& [key, list] : groups) {
            auto options = at::TensorOptions().dtype(at::kFloat).device(list.front().device());
            at::Tensor found_here = at::zeros({1}, options);
            at::Tensor inv = at::full({1}, inv_scale, options);
            at::_amp_foreach_non_finite_check_and_unscale_(list, found_here, inv);
            found = found.defined() ? found + found_here.to(found.device()) : found_here;
        }
        return !found.defined() || found.item<float>() == 0.0f ? 1 : 0;
    } catch (const std::exception& e) {
        *err = dup_message(e);
        return -1;
    }
}

}  // extern "C"
