// A C ABI over the few TensorRT C++ calls the edge runtime needs: build an engine from ONNX,
// deserialize it, bind tensors and enqueue. TensorRT itself is opened by the Rust side (dlopen);
// the factory functions arrive in `cg_factories`, so nothing here links against libnvinfer and
// the same binary runs, and says why, where TensorRT is missing.
#include <NvInfer.h>
#include <NvOnnxParser.h>

#include <cstdio>
#include <cstring>
#include <new>
#include <string>

#if NV_TENSORRT_MAJOR < 10
#error "TensorRT 10 or newer is needed (Dims64, enqueueV3, named tensors)"
#endif

using namespace nvinfer1;

extern "C" {

typedef void (*cg_log_fn)(void* user, int32_t severity, char const* message);

// An engine build's progress (TensorRT's IProgressMonitor): event 0 starts phase `phase` (inside
// `parent`, or null) of `n` steps, 1 completes step `n` (a zero return cancels the build), 2
// finishes the phase.
enum
{
    CG_PHASE_START = 0,
    CG_PHASE_STEP = 1,
    CG_PHASE_FINISH = 2,
};
typedef int32_t (*cg_progress_fn)(void* user, int32_t event, char const* phase, char const* parent, int32_t n);

struct cg_factories
{
    void* (*create_builder)(void* logger, int32_t version);
    void* (*create_runtime)(void* logger, int32_t version);
    void* (*create_parser)(void* network, void* logger, int32_t version);
};

enum cg_precision
{
    CG_FP32 = 0,
    CG_FP16 = 1,
    CG_INT8 = 2,
};

struct cg_build_options
{
    int32_t precision;
    char const* input_name;
    int64_t min_shape[4];
    int64_t opt_shape[4];
    int64_t max_shape[4];
    uint64_t workspace_bytes;
    void const* timing_cache;
    size_t timing_cache_size;
    // TensorRT 10 only: an INT8 calibration cache for models without Q/DQ nodes.
    void const* calibration_cache;
    size_t calibration_cache_size;
    // Nonzero: InstanceNormalization through TensorRT's plugin (libnvinfer_plugin, registered by
    // the caller) instead of its native layer; which is faster depends on the GPU and version.
    int32_t instance_norm_plugin;
    // Optional: told the build's phases and steps.
    cg_progress_fn progress;
    void* progress_user;
};

// Bytes owned by TensorRT, released with cg_blob_free.
struct cg_blob
{
    void const* data;
    size_t size;
    void* owner;
};

} // extern "C"

namespace
{

class ForwardingLogger : public ILogger
{
public:
    ForwardingLogger(cg_log_fn fn, void* user)
        : mFn(fn)
        , mUser(user)
    {
    }
    void log(Severity severity, AsciiChar const* msg) noexcept override
    {
        if (mFn)
        {
            mFn(mUser, static_cast<int32_t>(severity), msg);
        }
    }

private:
    cg_log_fn mFn;
    void* mUser;
};

class ProgressRelay : public IProgressMonitor
{
public:
    ProgressRelay(cg_progress_fn fn, void* user)
        : mFn(fn)
        , mUser(user)
    {
    }
    void phaseStart(char const* phase, char const* parent, int32_t steps) noexcept override
    {
        mFn(mUser, CG_PHASE_START, phase, parent, steps);
    }
    bool stepComplete(char const* phase, int32_t step) noexcept override
    {
        return mFn(mUser, CG_PHASE_STEP, phase, nullptr, step) != 0;
    }
    void phaseFinish(char const* phase) noexcept override
    {
        mFn(mUser, CG_PHASE_FINISH, phase, nullptr, 0);
    }

private:
    cg_progress_fn mFn;
    void* mUser;
};

void set_error(char* err, size_t len, std::string const& message)
{
    if (err && len > 0)
    {
        std::snprintf(err, len, "%s", message.c_str());
    }
}

Dims dims4(int64_t const* d)
{
    Dims dims{};
    dims.nbDims = 4;
    for (int i = 0; i < 4; ++i)
    {
        dims.d[i] = d[i];
    }
    return dims;
}

#if NV_TENSORRT_MAJOR < 11
// TensorRT 10 reads scales from a calibration cache through a calibrator that never calibrates.
class CacheCalibrator : public IInt8EntropyCalibrator2
{
public:
    CacheCalibrator(void const* data, size_t size)
        : mData(data)
        , mSize(size)
    {
    }
    int32_t getBatchSize() const noexcept override
    {
        return 1;
    }
    bool getBatch(void**, char const**, int32_t) noexcept override
    {
        return false;
    }
    void const* readCalibrationCache(size_t& length) noexcept override
    {
        length = mSize;
        return mData;
    }
    void writeCalibrationCache(void const*, size_t) noexcept override {}

private:
    void const* mData;
    size_t mSize;
};
#endif

struct Engine
{
    ForwardingLogger* logger = nullptr;
    IRuntime* runtime = nullptr;
    ICudaEngine* engine = nullptr;
    IExecutionContext* context = nullptr;

    ~Engine()
    {
        delete context;
        delete engine;
        delete runtime;
    }
};

} // namespace

extern "C" {

// The TensorRT version these headers declare: the loaded library's major must equal it.
int32_t cg_header_version()
{
    return NV_TENSORRT_VERSION;
}

void* cg_logger_new(cg_log_fn fn, void* user)
{
    return new (std::nothrow) ForwardingLogger(fn, user);
}

void cg_logger_free(void* logger)
{
    delete static_cast<ForwardingLogger*>(logger);
}

void cg_blob_free(cg_blob* blob)
{
    delete static_cast<IHostMemory*>(blob->owner);
    blob->owner = nullptr;
    blob->data = nullptr;
    blob->size = 0;
}

// Parses `onnx` and builds a serialized engine into `engine_out` (and the updated timing cache
// into `cache_out`). Returns 0, or 1 with a message in `err`; the parser's errors are listed there.
int32_t cg_build(cg_factories const* f, void* logger, void const* onnx, size_t onnx_size, cg_build_options const* o,
    cg_blob* engine_out, cg_blob* cache_out, char* err, size_t err_len)
{
    *engine_out = cg_blob{};
    *cache_out = cg_blob{};
    auto* builder = static_cast<IBuilder*>(f->create_builder(logger, NV_TENSORRT_VERSION));
    if (!builder)
    {
        set_error(err, err_len, "TensorRT could not create a builder (is a CUDA GPU visible?)");
        return 1;
    }
    INetworkDefinition* network = builder->createNetworkV2(0);
    IBuilderConfig* config = builder->createBuilderConfig();
    auto* parser = network ? static_cast<nvonnxparser::IParser*>(f->create_parser(network, logger, NV_ONNX_PARSER_VERSION))
                           : nullptr;
    ITimingCache* timing = nullptr;
    IHostMemory* plan = nullptr;
    int32_t status = 1;
    ProgressRelay progress(o->progress, o->progress_user);
#if NV_TENSORRT_MAJOR < 11
    CacheCalibrator calibrator(o->calibration_cache, o->calibration_cache_size);
#endif
    do
    {
        if (!network || !config || !parser)
        {
            set_error(err, err_len, "TensorRT could not create a network, builder config or ONNX parser");
            break;
        }
        if (o->instance_norm_plugin)
        {
            parser->clearFlag(nvonnxparser::OnnxParserFlag::kNATIVE_INSTANCENORM);
        }
        if (!parser->parse(onnx, onnx_size))
        {
            std::string message = "TensorRT's ONNX parser rejected the model:";
            for (int i = 0; i < parser->getNbErrors(); ++i)
            {
                auto const* e = parser->getError(i);
                message += "\n  node " + std::to_string(e->node()) + " (" + e->nodeOperator() + " " + e->nodeName()
                    + "): " + e->desc();
            }
            set_error(err, err_len, message);
            break;
        }
        config->setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, o->workspace_bytes);
        if (o->progress)
        {
            config->setProgressMonitor(&progress);
        }
#if NV_TENSORRT_MAJOR < 11
        // TensorRT 11 takes precision from the network's types (FP16 tensors, Q/DQ nodes) only.
        if (o->precision == CG_FP16 || o->precision == CG_INT8)
        {
            config->setFlag(BuilderFlag::kFP16);
        }
        if (o->precision == CG_INT8)
        {
            config->setFlag(BuilderFlag::kINT8);
            if (o->calibration_cache_size > 0)
            {
                config->setInt8Calibrator(&calibrator);
            }
        }
#endif
        IOptimizationProfile* profile = builder->createOptimizationProfile();
        if (!profile || !profile->setDimensions(o->input_name, OptProfileSelector::kMIN, dims4(o->min_shape))
            || !profile->setDimensions(o->input_name, OptProfileSelector::kOPT, dims4(o->opt_shape))
            || !profile->setDimensions(o->input_name, OptProfileSelector::kMAX, dims4(o->max_shape))
            || config->addOptimizationProfile(profile) < 0)
        {
            set_error(err, err_len, std::string("TensorRT refused the shape profile of input `") + o->input_name + "`");
            break;
        }
        timing = config->createTimingCache(o->timing_cache, o->timing_cache_size);
        if (!timing || !config->setTimingCache(*timing, false))
        {
            set_error(err, err_len, "TensorRT refused the timing cache (made by another TensorRT version or GPU?)");
            break;
        }
        plan = builder->buildSerializedNetwork(*network, *config);
        if (!plan || plan->size() == 0)
        {
            set_error(err, err_len, "TensorRT could not build the engine (its log above says why)");
            break;
        }
        engine_out->data = plan->data();
        engine_out->size = plan->size();
        engine_out->owner = plan;
        plan = nullptr;
        if (IHostMemory* cache = config->getTimingCache()->serialize())
        {
            cache_out->data = cache->data();
            cache_out->size = cache->size();
            cache_out->owner = cache;
        }
        status = 0;
    } while (false);
    delete plan;
    delete timing;
    delete parser;
    delete config;
    delete network;
    delete builder;
    return status;
}

// Deserializes an engine and creates its execution context; null with a message in `err` on failure.
void* cg_engine_load(cg_factories const* f, void* logger, void const* data, size_t size, char* err, size_t err_len)
{
    auto* e = new (std::nothrow) Engine();
    if (!e)
    {
        set_error(err, err_len, "out of host memory");
        return nullptr;
    }
    e->runtime = static_cast<IRuntime*>(f->create_runtime(logger, NV_TENSORRT_VERSION));
    if (!e->runtime)
    {
        set_error(err, err_len, "TensorRT could not create a runtime (is a CUDA GPU visible?)");
    }
    else if (!(e->engine = e->runtime->deserializeCudaEngine(data, size)))
    {
        set_error(err, err_len,
            "TensorRT could not deserialize the engine (built by another TensorRT version or for another GPU?)");
    }
    else if (!(e->context = e->engine->createExecutionContext()))
    {
        set_error(err, err_len, "TensorRT could not create an execution context (out of GPU memory?)");
    }
    else
    {
        return e;
    }
    delete e;
    return nullptr;
}

void cg_engine_free(void* engine)
{
    delete static_cast<Engine*>(engine);
}

int32_t cg_engine_io_count(void const* engine)
{
    return static_cast<Engine const*>(engine)->engine->getNbIOTensors();
}

// Name, direction (1: input) and TensorRT DataType of I/O tensor `index`.
char const* cg_engine_io(void const* engine, int32_t index, int32_t* is_input, int32_t* data_type)
{
    auto const* e = static_cast<Engine const*>(engine)->engine;
    char const* name = e->getIOTensorName(index);
    if (name)
    {
        *is_input = e->getTensorIOMode(name) == TensorIOMode::kINPUT ? 1 : 0;
        *data_type = static_cast<int32_t>(e->getTensorDataType(name));
    }
    return name;
}

// The profile's MIN (0), OPT (1) or MAX (2) shape of an input; returns its rank, -1 if unknown.
int32_t cg_engine_profile_shape(void const* engine, char const* name, int32_t which, int64_t* dims)
{
    auto const selector = which == 0 ? OptProfileSelector::kMIN
        : which == 1                 ? OptProfileSelector::kOPT
                                     : OptProfileSelector::kMAX;
    Dims const d = static_cast<Engine const*>(engine)->engine->getProfileShape(name, 0, selector);
    for (int i = 0; i < d.nbDims && i < 8; ++i)
    {
        dims[i] = d.d[i];
    }
    return d.nbDims;
}

int32_t cg_context_set_input_shape(void* engine, char const* name, int64_t const* dims)
{
    return static_cast<Engine*>(engine)->context->setInputShape(name, dims4(dims)) ? 0 : 1;
}

int32_t cg_context_set_address(void* engine, char const* name, void* address)
{
    return static_cast<Engine*>(engine)->context->setTensorAddress(name, address) ? 0 : 1;
}

int32_t cg_context_enqueue(void* engine, void* stream)
{
    return static_cast<Engine*>(engine)->context->enqueueV3(static_cast<cudaStream_t>(stream)) ? 0 : 1;
}

} // extern "C"
