// Built instead of tensorrt_shim.cpp where no TensorRT headers were found: the same symbols,
// reporting header version 0, which the Rust side turns into "this build has no TensorRT".
// Nothing but cg_header_version is reached then; the rest only keeps the link whole.
#include <stddef.h>
#include <stdint.h>

int32_t cg_header_version(void) { return 0; }
void* cg_logger_new(void* fn, void* user) { (void)fn; (void)user; return NULL; }
void cg_logger_free(void* logger) { (void)logger; }
void cg_blob_free(void* blob) { (void)blob; }
int32_t cg_build(void const* f, void* logger, void const* onnx, size_t onnx_size, void const* o, void* engine_out,
    void* cache_out, char* err, size_t err_len)
{
    (void)f; (void)logger; (void)onnx; (void)onnx_size; (void)o; (void)engine_out; (void)cache_out;
    if (err && err_len > 0) err[0] = 0;
    return 1;
}
void* cg_engine_load(void const* f, void* logger, void const* data, size_t size, char* err, size_t err_len)
{
    (void)f; (void)logger; (void)data; (void)size;
    if (err && err_len > 0) err[0] = 0;
    return NULL;
}
void cg_engine_free(void* engine) { (void)engine; }
int32_t cg_engine_io_count(void const* engine) { (void)engine; return 0; }
char const* cg_engine_io(void const* engine, int32_t index, int32_t* is_input, int32_t* data_type)
{
    (void)engine; (void)index; (void)is_input; (void)data_type;
    return NULL;
}
int32_t cg_engine_profile_shape(void const* engine, char const* name, int32_t which, int64_t* dims)
{
    (void)engine; (void)name; (void)which; (void)dims;
    return -1;
}
int32_t cg_context_set_input_shape(void* engine, char const* name, int64_t const* dims)
{
    (void)engine; (void)name; (void)dims;
    return 1;
}
int32_t cg_context_set_address(void* engine, char const* name, void* address)
{
    (void)engine; (void)name; (void)address;
    return 1;
}
int32_t cg_context_enqueue(void* engine, void* stream) { (void)engine; (void)stream; return 1; }
