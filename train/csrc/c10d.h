// The C interface of the c10d shim (c10d.cpp): one process group per process, on PyTorch's
// distributed engine. Every function that can fail returns nonzero (or NULL) and sets *err to a
// message the caller frees with cg_free.
#pragma once

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cg_group cg_group;

enum { CG_GLOO = 0, CG_NCCL = 1 };

// Rendezvous at addr:port (rank 0 serves the store), then the backend's own connections.
// device_index is the CUDA device for NCCL (ignored by Gloo).
cg_group* cg_group_new(const char* addr, uint16_t port, int rank, int world, int backend, int device_index,
                       int64_t timeout_ms, char** err);
void cg_group_free(cg_group* group);

// Averages each tensor (at::Tensor*) over the ranks, in place, in buckets of at most
// bucket_bytes; the buckets' all-reduces run concurrently.
int cg_average(cg_group* group, void* const* tensors, size_t n, size_t bucket_bytes, char** err);
// Copies rank 0's values of each tensor into every rank's.
int cg_broadcast(cg_group* group, void* const* tensors, size_t n, char** err);
int cg_barrier(cg_group* group, char** err);

int cg_store_set(cg_group* group, const char* key, const char* value, size_t len, char** err);
// Waits (up to the group's timeout) for key; *value is freed with cg_free.
int cg_store_get(cg_group* group, const char* key, char** value, size_t* len, char** err);

// Records that this rank stops with message, for the other ranks' diagnosis.
void cg_mark_failed(cg_group* group, const char* message);
// What the other ranks are doing, after a collective failed: a sentence to free with cg_free.
char* cg_diagnose(cg_group* group);

// Whether this build has the NCCL backend.
int cg_has_nccl(void);

void cg_free(void* p);

#ifdef __cplusplus
}
#endif
