// TensorRT's headers include <cuda_runtime_api.h> only for these two handle types. The shim never
// calls the CUDA runtime (streams come from the driver API, where CUstream is the same pointer),
// so this stub lets it build without the CUDA toolkit.
#pragma once
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;
