#include "feed_transform.hpp"

#include <algorithm>

namespace sparknet {

namespace {

// One output value per thread (grid-stride). The arithmetic is
// FeedLayer::TransformItems's, in the same order and with explicit rounding
// intrinsics so nvcc cannot fuse it: the GPU feed is bit-exact with the CPU's.
template <typename T>
__global__ void TransformKernel(int64_t count, const T* in, TransformArgs a, float* out) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += stride) {
    const int w = static_cast<int>(i % a.out_w);
    int64_t rest = i / a.out_w;
    const int h = static_cast<int>(rest % a.out_h);
    rest /= a.out_h;
    const int c = static_cast<int>(rest % a.channels);
    const int64_t n = rest / a.channels;
    const int* draw = a.draws + 3 * n;
    const int src_w = draw[0] ? a.out_w - 1 - w : w;  // a mirrored item reads right to left
    const int64_t at = (static_cast<int64_t>(c) * a.height + draw[1] + h) * a.width + draw[2] + src_w;
    float x = static_cast<float>(in[n * a.channels * a.height * a.width + at]);
    if (a.mean) {
      x = __fmul_rn(__fsub_rn(x, a.mean[at]), a.scale);
    } else if (a.mean_values) {
      x = __fmul_rn(__fsub_rn(x, a.mean_values[a.num_mean_values == 1 ? 0 : c]), a.scale);
    } else {
      x = __fmul_rn(x, a.scale);
    }
    out[i] = x;
  }
}

template <typename T>
void Launch(const T* in, const TransformArgs& args, float* out, cudaStream_t stream) {
  const int64_t count = static_cast<int64_t>(args.num) * args.channels * args.out_h * args.out_w;
  if (count == 0) return;
  const int threads = 512;
  const int64_t blocks = std::min<int64_t>((count + threads - 1) / threads, 8192);
  TransformKernel<T><<<static_cast<int>(blocks), threads, 0, stream>>>(count, in, args, out);
}

}  // namespace

void TransformOnGpu(const uint8_t* in, const TransformArgs& args, float* out,
                    cudaStream_t stream) {
  Launch(in, args, out, stream);
}

void TransformOnGpu(const float* in, const TransformArgs& args, float* out,
                    cudaStream_t stream) {
  Launch(in, args, out, stream);
}

}  // namespace sparknet
