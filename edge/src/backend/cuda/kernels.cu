// Frame <-> tensor kernels of the CUDA backend, compiled at run time by NVRTC (so: no CUDA
// headers; halves are handled as IEEE bit patterns in `unsigned short`).
//
// They reproduce the CPU path (runtime/src/frame/color.rs, runtime/src/preprocess.rs) to the bit:
// - arithmetic is IEEE f32 in the CPU code's order; the host compiles with --fmad=false because
//   a fused multiply-add rounds once where the CPU rounds twice, which flips u8 roundings;
// - the resize is runtime/src/resize.rs: the same fixed-point tables (`resize::Table`, copied to
//   the device) and its two passes (vertical first, then horizontal), rounding to u8 after each.
//
// A resize table for one axis holds, per output index, `window + 2` ints: the first input
// index, the number of taps, then the taps' weights scaled by 2^precision (zero-padded).
//
// Temporal smoothing is runtime/src/smoothing.rs, to the bit: the same integer luma, window sums
// and gate (its constants are arguments), the f32 blend in the same order, and the same hold.

struct Frame {
    unsigned long long offset[3];  // bytes from the buffer's start to each plane
    int stride[3];                 // bytes per row of each plane
    int format;                    // FORMAT_*
    int width;
    int height;
    // YUV -> RGB (color.rs `Coefficients`); unused for RGB formats.
    float kr;
    float kb;
    float y_offset;
    float y_scale;
    float c_scale;
};

#define FORMAT_RGB 0
#define FORMAT_RGBA 1
#define FORMAT_BGRX 2
#define FORMAT_I420 3
#define FORMAT_NV12 4

// color.rs `to_u8`: clamp, then +0.5 and truncation.
__device__ __forceinline__ int to_u8(float v) {
    return (int)(fminf(fmaxf(v, 0.0f), 255.0f) + 0.5f);
}

// color.rs `Coefficients::rgb`, term by term.
__device__ void yuv_to_rgb(const Frame& f, int y8, int u8, int v8, int rgb[3]) {
    float kg = 1.0f - f.kr - f.kb;
    float y = ((float)y8 - f.y_offset) * f.y_scale;
    float cb = ((float)u8 - 128.0f) * f.c_scale;
    float cr = ((float)v8 - 128.0f) * f.c_scale;
    float r = y + 2.0f * (1.0f - f.kr) * cr;
    float b = y + 2.0f * (1.0f - f.kb) * cb;
    float g = (y - f.kr * r - f.kb * b) / kg;
    rgb[0] = to_u8(r);
    rgb[1] = to_u8(g);
    rgb[2] = to_u8(b);
}

// The frame's pixel (x, y) as RGB, as color.rs `read_rgb` converts it: YUV is rounded to u8 RGB
// here because the CPU resizes packed u8 RGB.
__device__ void read_rgb(const unsigned char* buf, const Frame& f, int x, int y, int rgb[3]) {
    const unsigned char* row = buf + f.offset[0] + (long long)y * f.stride[0];
    switch (f.format) {
        case FORMAT_RGB:
            rgb[0] = row[3 * x];
            rgb[1] = row[3 * x + 1];
            rgb[2] = row[3 * x + 2];
            break;
        case FORMAT_RGBA:
            rgb[0] = row[4 * x];
            rgb[1] = row[4 * x + 1];
            rgb[2] = row[4 * x + 2];
            break;
        case FORMAT_BGRX:
            rgb[0] = row[4 * x + 2];
            rgb[1] = row[4 * x + 1];
            rgb[2] = row[4 * x];
            break;
        case FORMAT_I420: {
            long long c = (long long)(y / 2);
            int u = buf[f.offset[1] + c * f.stride[1] + x / 2];
            int v = buf[f.offset[2] + c * f.stride[2] + x / 2];
            yuv_to_rgb(f, row[x], u, v, rgb);
            break;
        }
        default: {  // FORMAT_NV12
            const unsigned char* uv = buf + f.offset[1] + (long long)(y / 2) * f.stride[1] + x / 2 * 2;
            yuv_to_rgb(f, row[x], uv[0], uv[1], rgb);
            break;
        }
    }
}

// One pass's fixed-point sum back to u8: resize.rs `Table::clip`.
__device__ __forceinline__ int clip_pass(int sum, int precision) {
    return min(max(sum >> precision, 0), 255);
}

// f32 -> IEEE half bits, round to nearest even (as __float2half_rn and half::f16::from_f32).
__device__ unsigned short f32_to_f16(float value) {
    unsigned int x = __float_as_uint(value);
    unsigned int sign = (x >> 16) & 0x8000u;
    unsigned int ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);  // NaN
    if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // rounds past 65504: inf
    if (ax >= 0x38800000u) {
        // Normal half: rebias the exponent (127 -> 15), round the 13 dropped mantissa bits.
        unsigned int m = ax - 0x38000000u;
        m += 0x0fffu + ((m >> 13) & 1u);
        return (unsigned short)(sign | (m >> 13));
    }
    if (ax < 0x33000000u) return (unsigned short)sign;  // below half the smallest subnormal
    // Subnormal half: the 24-bit significand shifted down to units of 2^-24.
    unsigned int e = ax >> 23;
    unsigned int m = (ax & 0x7fffffu) | 0x800000u;
    unsigned int shift = 126u - e;
    unsigned int k = m >> shift;
    unsigned int rest = m & ((1u << shift) - 1u);
    unsigned int half = 1u << (shift - 1u);
    if (rest > half || (rest == half && (k & 1u))) k += 1u;
    return (unsigned short)(sign | k);
}

// IEEE half bits -> f32 (exact).
__device__ float f16_to_f32(unsigned short h) {
    unsigned int sign = ((unsigned int)h & 0x8000u) << 16;
    unsigned int e = ((unsigned int)h >> 10) & 0x1fu;
    unsigned int m = (unsigned int)h & 0x3ffu;
    if (e == 0) {
        float v = (float)m * 5.9604644775390625e-8f;  // m * 2^-24
        return sign ? -v : v;
    }
    if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
    return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}

// Frame -> tensor [3, out_h, out_w] in [-1, 1] (planar RGB), one thread per tensor pixel:
// frame -> u8 RGB (read_rgb) -> resize to the tensor's size -> normalise.
extern "C" __global__ void cyclegan_preprocess(const unsigned char* frame, Frame f, const int* x_table, int x_window,
                                               int x_precision, const int* y_table, int y_window, int y_precision,
                                               int out_w, int out_h, void* tensor, int tensor_is_half) {
    int ox = blockIdx.x * blockDim.x + threadIdx.x;
    int oy = blockIdx.y * blockDim.y + threadIdx.y;
    if (ox >= out_w || oy >= out_h) return;
    const int* xt = x_table + ox * (x_window + 2);
    const int* yt = y_table + oy * (y_window + 2);
    int h_init = 1 << (x_precision - 1);
    int v_init = 1 << (y_precision - 1);
    int sum[3] = {h_init, h_init, h_init};
    for (int i = 0; i < xt[1]; i++) {
        int x = xt[0] + i;
        int column[3] = {v_init, v_init, v_init};
        for (int j = 0; j < yt[1]; j++) {
            int rgb[3];
            read_rgb(frame, f, x, yt[0] + j, rgb);
            for (int c = 0; c < 3; c++) column[c] += rgb[c] * yt[2 + j];
        }
        // The vertical pass writes u8 to a temporary image before the horizontal one.
        for (int c = 0; c < 3; c++) sum[c] += clip_pass(column[c], y_precision) * xt[2 + i];
    }
    long long plane = (long long)out_w * out_h;
    long long at = (long long)oy * out_w + ox;
    for (int c = 0; c < 3; c++) {
        // The resized image is u8; preprocess.rs normalises those values.
        float v = (float)clip_pass(sum[c], x_precision) / 127.5f - 1.0f;
        if (tensor_is_half) {
            ((unsigned short*)tensor)[c * plane + at] = f32_to_f16(v);
        } else {
            ((float*)tensor)[c * plane + at] = v;
        }
    }
}

// smoothing.rs `luma`: BT.601 in 8-bit fixed point.
__device__ __forceinline__ int rgb_luma(const int rgb[3]) {
    return (77 * rgb[0] + 150 * rgb[1] + 29 * rgb[2] + 128) >> 8;
}

// Temporal smoothing's first step, before post-processing overwrites the frame: each pixel's
// luma change since the previous input (`change`), whose luma (`luma`) it replaces. One thread
// per frame pixel; both buffers are width * height.
extern "C" __global__ void cyclegan_luma_change(const unsigned char* frame, Frame f, unsigned char* luma,
                                                unsigned char* change) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= f.width || y >= f.height) return;
    int rgb[3];
    read_rgb(frame, f, x, y, rgb);
    long long at = (long long)y * f.width + x;
    int now = rgb_luma(rgb);
    change[at] = (unsigned char)abs(now - (int)luma[at]);
    luma[at] = (unsigned char)now;
}

// smoothing.rs `gate`: 1 up to a mean change of `open`, 0 from `closed`, linear between.
__device__ float smoothing_gate(unsigned int sum, unsigned int count, unsigned int open, unsigned int closed) {
    unsigned int lo = open * count;
    unsigned int hi = closed * count;
    if (sum <= lo) return 1.0f;
    if (sum >= hi) return 0.0f;
    return (float)(hi - sum) / (float)(hi - lo);
}

// preprocess.rs `from_tensor`'s `to_u8`: the model's output becomes a u8 image before resizing.
__device__ __forceinline__ int tensor_u8(const void* tensor, int is_half, long long i) {
    float v = is_half ? f16_to_f32(((const unsigned short*)tensor)[i]) : ((const float*)tensor)[i];
    return (int)(fminf(fmaxf((v + 1.0f) * 127.5f, 0.0f), 255.0f) + 0.5f);
}

// Tensor [3, in_h, in_w] -> the frame, in place: denormalise to u8, resize to the frame's size,
// blend with the frame's own pixels at `strength`, smooth temporally where `state` is not null,
// and write back in the frame's format. One thread per 2x2 block, so that 4:2:0 chroma (one
// sample per block) is written by the thread that reads the block's original pixels: in place
// stays race-free.
//
// Smoothing: `change` is cyclegan_luma_change's output for this frame, `state` the previous
// smoothed value (RGB, width * height * 3) and `shown` its level shown, both rewritten here;
// `restart` makes this frame the state unblended; `weight` is the still-scene weight, averaged
// over windows of `radius`; where blended, the shown level moves once the value is over `hold` away.
extern "C" __global__ void cyclegan_postprocess(const void* tensor, int tensor_is_half, int in_w, int in_h,
                                                const int* x_table, int x_window, int x_precision,
                                                const int* y_table, int y_window, int y_precision,
                                                unsigned char* frame, Frame f, float strength,
                                                const unsigned char* change, float* state, unsigned char* shown,
                                                int restart, float weight, int radius, unsigned int gate_open,
                                                unsigned int gate_closed, float hold) {
    int bx = blockIdx.x * blockDim.x + threadIdx.x;
    int by = blockIdx.y * blockDim.y + threadIdx.y;
    if (2 * bx >= f.width || 2 * by >= f.height) return;
    long long plane = (long long)in_w * in_h;
    int h_init = 1 << (x_precision - 1);
    int v_init = 1 << (y_precision - 1);
    bool blend = strength < 1.0f;
    float s = fmaxf(strength, 0.0f);

    int out[2][2][3];
    int count = 0;
    for (int dy = 0; dy < 2; dy++) {
        for (int dx = 0; dx < 2; dx++) {
            int x = 2 * bx + dx;
            int y = 2 * by + dy;
            if (x >= f.width || y >= f.height) continue;
            count++;
            const int* xt = x_table + x * (x_window + 2);
            const int* yt = y_table + y * (y_window + 2);
            int sum[3] = {h_init, h_init, h_init};
            for (int i = 0; i < xt[1]; i++) {
                long long column_at = xt[0] + i;
                int column[3] = {v_init, v_init, v_init};
                for (int j = 0; j < yt[1]; j++) {
                    long long at = (long long)(yt[0] + j) * in_w + column_at;
                    for (int c = 0; c < 3; c++) {
                        column[c] += tensor_u8(tensor, tensor_is_half, c * plane + at) * yt[2 + j];
                    }
                }
                // As in pre-processing: the vertical pass's temporary image is u8.
                for (int c = 0; c < 3; c++) sum[c] += clip_pass(column[c], y_precision) * xt[2 + i];
            }
            int original[3];
            if (blend) read_rgb(frame, f, x, y, original);
            for (int c = 0; c < 3; c++) {
                int t = clip_pass(sum[c], x_precision);
                // preprocess.rs blends the u8 images and rounds half away from zero (f32::round).
                out[dy][dx][c] = blend ? (int)roundf(s * (float)t + (1.0f - s) * (float)original[c]) : t;
            }
            if (state != nullptr) {
                float a = 0.0f;
                if (!restart) {
                    int x0 = max(x - radius, 0), x1 = min(x + radius, f.width - 1);
                    int y0 = max(y - radius, 0), y1 = min(y + radius, f.height - 1);
                    unsigned int changed = 0;
                    for (int yy = y0; yy <= y1; yy++) {
                        for (int xx = x0; xx <= x1; xx++) changed += change[(long long)yy * f.width + xx];
                    }
                    unsigned int count = (unsigned int)((x1 - x0 + 1) * (y1 - y0 + 1));
                    a = smoothing_gate(changed, count, gate_open, gate_closed) * weight;
                }
                float b = 1.0f - a;
                float* previous = state + 3 * ((long long)y * f.width + x);
                unsigned char* level = shown + 3 * ((long long)y * f.width + x);
                for (int c = 0; c < 3; c++) {
                    float v = restart ? (float)out[dy][dx][c] : a * previous[c] + b * (float)out[dy][dx][c];
                    previous[c] = v;
                    bool held = a > 0.0f && fabsf(v - (float)level[c]) <= hold;
                    out[dy][dx][c] = held ? (int)level[c] : to_u8(v);
                    level[c] = (unsigned char)out[dy][dx][c];
                }
            }
        }
    }

    // color.rs `write_rgb`: RGB formats keep alpha and padding bytes as they were.
    if (f.format == FORMAT_RGB || f.format == FORMAT_RGBA || f.format == FORMAT_BGRX) {
        int bytes = f.format == FORMAT_RGB ? 3 : 4;
        for (int dy = 0; dy < 2; dy++) {
            for (int dx = 0; dx < 2; dx++) {
                int x = 2 * bx + dx;
                int y = 2 * by + dy;
                if (x >= f.width || y >= f.height) continue;
                unsigned char* p = frame + f.offset[0] + (long long)y * f.stride[0] + (long long)x * bytes;
                bool bgr = f.format == FORMAT_BGRX;
                p[0] = (unsigned char)out[dy][dx][bgr ? 2 : 0];
                p[1] = (unsigned char)out[dy][dx][1];
                p[2] = (unsigned char)out[dy][dx][bgr ? 0 : 2];
            }
        }
        return;
    }

    // YUV: luma per pixel; chroma from the block's mean colour, summed in row order like color.rs.
    float kg = 1.0f - f.kr - f.kb;
    float mean[3] = {0.0f, 0.0f, 0.0f};
    for (int dy = 0; dy < 2; dy++) {
        for (int dx = 0; dx < 2; dx++) {
            int x = 2 * bx + dx;
            int y = 2 * by + dy;
            if (x >= f.width || y >= f.height) continue;
            float r = (float)out[dy][dx][0], g = (float)out[dy][dx][1], b = (float)out[dy][dx][2];
            float luma = f.kr * r + kg * g + f.kb * b;
            frame[f.offset[0] + (long long)y * f.stride[0] + x] = (unsigned char)to_u8(luma / f.y_scale + f.y_offset);
            mean[0] += r;
            mean[1] += g;
            mean[2] += b;
        }
    }
    float n = (float)count;
    float r = mean[0] / n, g = mean[1] / n, b = mean[2] / n;
    float luma = f.kr * r + kg * g + f.kb * b;
    float cb = (b - luma) / (2.0f * (1.0f - f.kb));
    float cr = (r - luma) / (2.0f * (1.0f - f.kr));
    unsigned char u = (unsigned char)to_u8(cb / f.c_scale + 128.0f);
    unsigned char v = (unsigned char)to_u8(cr / f.c_scale + 128.0f);
    if (f.format == FORMAT_I420) {
        frame[f.offset[1] + (long long)by * f.stride[1] + bx] = u;
        frame[f.offset[2] + (long long)by * f.stride[2] + bx] = v;
    } else {
        unsigned char* uv = frame + f.offset[1] + (long long)by * f.stride[1] + 2 * bx;
        uv[0] = u;
        uv[1] = v;
    }
}
