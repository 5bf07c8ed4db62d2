// Caffe's data transform (crop, mirror, mean, scale) as a CUDA kernel, for
// FeedLayer on a GPU: raw uint8 (or float) batches cross to the device at
// their own size, and the transform reads them there.
#ifndef SPARKNET_FEED_TRANSFORM_HPP_
#define SPARKNET_FEED_TRANSFORM_HPP_

#include <cstdint>

#include <cuda_runtime.h>

namespace sparknet {

struct TransformArgs {
  int num, channels, height, width;  // the raw batch
  int out_h, out_w;                  // the top (cropped)
  float scale;
  const float* mean;         // the mean file's (C, H, W) blob on the device, or NULL
  const float* mean_values;  // 1 or C values on the device, or NULL
  int num_mean_values;
  const int* draws;          // per item: mirror, h_off, w_off (drawn on the host)
};

void TransformOnGpu(const uint8_t* in, const TransformArgs& args, float* out,
                    cudaStream_t stream);
void TransformOnGpu(const float* in, const TransformArgs& args, float* out,
                    cudaStream_t stream);

}  // namespace sparknet

#endif  // SPARKNET_FEED_TRANSFORM_HPP_
