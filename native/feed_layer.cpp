#include "feed_layer.hpp"

#include <cstring>
#include <sstream>

#include "caffe/layer_factory.hpp"
#include "caffe/util/io.hpp"
#include "caffe/util/rng.hpp"
#ifndef CPU_ONLY
#include "feed_transform.hpp"
#endif

namespace sparknet {

using caffe::Blob;

namespace {

std::string ShapeString(int ndim, const int64_t* shape) {
  std::ostringstream out;
  out << "(";
  for (int d = 0; d < ndim; ++d) out << (d ? ", " : "") << shape[d];
  out << ")";
  return out.str();
}

// Caffe's count for a batch buffer, after checking its rank.
int64_t BatchCount(const sn_batch& batch, int i) {
  if (batch.ndim[i] < 1 || batch.ndim[i] > SN_MAX_DIMS) {
    throw FeedError("feed returned a buffer of rank " + std::to_string(batch.ndim[i]));
  }
  int64_t count = 1;
  for (int d = 0; d < batch.ndim[i]; ++d) count *= batch.shape[i][d];
  return count;
}

// Widen (uint8) or copy (float32) `count` values into `out`.
void ToFloat(const sn_batch& batch, int i, int64_t count, float* out) {
  if (batch.dtype[i] == SN_FLOAT32) {
    std::memcpy(out, batch.data[i], count * sizeof(float));
  } else if (batch.dtype[i] == SN_UINT8) {
    const uint8_t* in = static_cast<const uint8_t*>(batch.data[i]);
    for (int64_t j = 0; j < count; ++j) out[j] = static_cast<float>(in[j]);
  } else {
    throw FeedError("feed returned an unknown dtype code " + std::to_string(batch.dtype[i]));
  }
}

}  // namespace

void FeedLayer::LayerSetUp(const std::vector<Blob<float>*>& bottom,
                           const std::vector<Blob<float>*>& top) {
  // Shapes exactly as Caffe's InputLayer reads them.
  const caffe::InputParameter& param = this->layer_param_.input_param();
  const int num_shape = param.shape_size();
  CHECK(num_shape == 0 || num_shape == 1 || num_shape == static_cast<int>(top.size()))
      << "layer '" << this->layer_param_.name() << "': give one input_param shape, "
      << "or one per top (" << top.size() << ")";
  CHECK_GT(num_shape, 0) << "layer '" << this->layer_param_.name()
                         << "' needs input_param { shape { dim: ... } }";
  for (size_t i = 0; i < top.size(); ++i) {
    top[i]->Reshape(param.shape(num_shape == 1 ? 0 : i));
  }
  transform_ = this->layer_param_.has_transform_param();
  if (transform_) SetUpTransform(top[0]);
  caffe::caffe_rng_rand();  // what StartInternalThread draws for its thread's seed
}

void FeedLayer::SetUpTransform(Blob<float>* data) {
  transform_param_ = this->layer_param_.transform_param();
  CHECK_EQ(data->num_axes(), 4) << "layer '" << this->layer_param_.name()
      << "': transform_param needs a 4-d data top (N, C, H, W)";
  const int crop = transform_param_.crop_size();
  if (crop) {
    CHECK(data->height() == crop && data->width() == crop)
        << "layer '" << this->layer_param_.name() << "': crop_size " << crop
        << " but its data top is " << data->shape_string();
  }
  CHECK(!(transform_param_.has_mean_file() && transform_param_.mean_value_size() > 0))
      << "Cannot specify mean_file and mean_value at the same time";
  if (transform_param_.has_mean_file()) {
    caffe::BlobProto proto;
    caffe::ReadProtoFromBinaryFileOrDie(transform_param_.mean_file().c_str(), &proto);
    mean_.FromProto(proto);
    CHECK_EQ(mean_.channels(), data->channels()) << "mean file " << transform_param_.mean_file()
        << " has " << mean_.channels() << " channels; the data has " << data->channels();
  }
  const int num_mean_values = transform_param_.mean_value_size();
  CHECK(num_mean_values <= 1 || num_mean_values == data->channels())
      << "Specify either 1 mean_value or as many as channels: " << data->channels();
  if (num_mean_values > 0) {
    mean_values_.Reshape(std::vector<int>{num_mean_values});
    std::copy(transform_param_.mean_value().begin(), transform_param_.mean_value().end(),
              mean_values_.mutable_cpu_data());
  }
  // Draw from Caffe's RNG exactly as its prefetching data layers do, so the
  // same seed gives the same crops, flips and weight fillers as `caffe train`:
  // DataTransformer::InitRand runs twice (BaseDataLayer and
  // BasePrefetchingDataLayer::LayerSetUp; the second seed is the one used),
  // then StartInternalThread draws its thread's seed (LayerSetUp's last draw).
  const bool needs_rand = transform_param_.mirror() ||
                          (this->phase_ == caffe::TRAIN && crop);
  if (needs_rand) {
    caffe::caffe_rng_rand();
    rng_.reset(new caffe::Caffe::RNG(caffe::caffe_rng_rand()));
  }
}

int FeedLayer::Rand(int n) {
  caffe::rng_t* rng = static_cast<caffe::rng_t*>(rng_->generator());
  return ((*rng)() % n);
}

// The next batch from the embedding program, every top's buffer present.
sn_batch FeedLayer::Fetch(int num_tops) {
  const std::string& name = this->layer_param_.name();
  if (fn_ == NULL) {
    throw FeedError("no data for layer '" + name + "' in the " +
                    (this->phase_ == caffe::TRAIN ? "TRAIN" : "TEST") +
                    " phase: set its data first");
  }
  sn_batch batch;
  std::memset(&batch, 0, sizeof(batch));
  batch.num_tops = num_tops;
  const int phase = this->phase_ == caffe::TRAIN ? SN_PHASE_TRAIN : SN_PHASE_TEST;
  if (fn_(user_, phase, name.c_str(), &batch) != 0) {
    throw FeedError("the data feed of layer '" + name + "' failed");
  }
  for (int i = 0; i < num_tops; ++i) {
    if (batch.data[i] == NULL) {
      throw FeedError("the data feed gave no buffer for top '" +
                      this->layer_param_.top(i) + "' of layer '" + name + "'");
    }
  }
  return batch;
}

void FeedLayer::Forward_cpu(const std::vector<Blob<float>*>& bottom,
                            const std::vector<Blob<float>*>& top) {
  const sn_batch batch = Fetch(static_cast<int>(top.size()));
  for (size_t i = 0; i < top.size(); ++i) {
    if (i == 0 && transform_) {
      TransformTop(batch, top[0]);
    } else {
      CopyTop(batch, i, top[i]);
    }
  }
}

// Values of an untransformed top, checked against its shape.
int64_t FeedLayer::PlainCount(const sn_batch& batch, int i, Blob<float>* top) {
  const int64_t count = BatchCount(batch, i);
  if (count != top->count()) {
    throw FeedError("top '" + this->layer_param_.top(i) + "' of layer '" +
                    this->layer_param_.name() + "' has shape " + top->shape_string() +
                    " but the feed gave " + ShapeString(batch.ndim[i], batch.shape[i]));
  }
  return count;
}

void FeedLayer::CopyTop(const sn_batch& batch, int i, Blob<float>* top) {
  ToFloat(batch, i, PlainCount(batch, i, top), top->mutable_cpu_data());
}

void FeedLayer::CheckTransformInput(const sn_batch& batch, Blob<float>* top) {
  // The raw batch may be larger than the top when transform_param crops.
  const int64_t* shape = batch.shape[0];
  const int crop = transform_param_.crop_size();
  const bool fits = batch.ndim[0] == 4 && shape[0] == top->num() &&
                    shape[1] == top->channels() &&
                    (crop ? shape[2] >= crop && shape[3] >= crop
                          : shape[2] == top->height() && shape[3] == top->width());
  if (!fits) {
    throw FeedError("top '" + this->layer_param_.top(0) + "' of layer '" +
                    this->layer_param_.name() + "' takes " +
                    (crop ? "(" + std::to_string(top->num()) + ", " +
                                std::to_string(top->channels()) + ", >=" + std::to_string(crop) +
                                ", >=" + std::to_string(crop) + ")"
                          : top->shape_string()) +
                    " before its transform, but the feed gave " +
                    ShapeString(batch.ndim[0], shape));
  }
  if (mean_.count() && (mean_.height() != shape[2] || mean_.width() != shape[3])) {
    throw FeedError("the mean file of layer '" + this->layer_param_.name() + "' is " +
                    std::to_string(mean_.height()) + "x" + std::to_string(mean_.width()) +
                    " but the images are " + std::to_string(shape[2]) + "x" +
                    std::to_string(shape[3]));
  }
  if (batch.dtype[0] != SN_UINT8 && batch.dtype[0] != SN_FLOAT32) {
    throw FeedError("feed returned an unknown dtype code " + std::to_string(batch.dtype[0]));
  }
}

void FeedLayer::TransformTop(const sn_batch& batch, Blob<float>* top) {
  CheckTransformInput(batch, top);
  const int height = batch.shape[0][2], width = batch.shape[0][3];
  const std::vector<int> draws = Draws(top->num(), height, width);
  if (batch.dtype[0] == SN_UINT8) {
    TransformItems(static_cast<const uint8_t*>(batch.data[0]), height, width, draws, top);
  } else {
    TransformItems(static_cast<const float*>(batch.data[0]), height, width, draws, top);
  }
}

// Each item's (mirror, h_off, w_off): DataTransformer's random draws, in its
// order (mirror, then the crop offsets), for the host and device transforms alike.
std::vector<int> FeedLayer::Draws(int num, int height, int width) {
  const int crop = transform_param_.crop_size();
  std::vector<int> draws(3 * num, 0);
  for (int n = 0; n < num; ++n) {
    draws[3 * n] = transform_param_.mirror() && Rand(2);
    if (crop) {
      if (this->phase_ == caffe::TRAIN) {
        draws[3 * n + 1] = Rand(height - crop + 1);
        draws[3 * n + 2] = Rand(width - crop + 1);
      } else {
        draws[3 * n + 1] = (height - crop) / 2;
        draws[3 * n + 2] = (width - crop) / 2;
      }
    }
  }
  return draws;
}

// DataTransformer<float>::Transform(const Datum&, ...) for each item: the same
// random draws in the same order (mirror, then crop offsets), the same
// (x - mean) * scale in float, written straight from the caller's buffer.
template <typename T>
void FeedLayer::TransformItems(const T* in, int height, int width, const std::vector<int>& draws,
                               Blob<float>* top) {
  const int channels = top->channels(), out_h = top->height(), out_w = top->width();
  const float scale = transform_param_.scale();
  const float* mean = mean_.count() ? mean_.cpu_data() : NULL;
  const float* mean_values = mean_values_.count() ? mean_values_.cpu_data() : NULL;
  float* out = top->mutable_cpu_data();
  for (int n = 0; n < top->num(); ++n) {
    const bool mirror = draws[3 * n];
    const int h_off = draws[3 * n + 1], w_off = draws[3 * n + 2];
    const T* item = in + static_cast<int64_t>(n) * channels * height * width;
    for (int c = 0; c < channels; ++c) {
      const float mean_value = mean_values == NULL ? 0.f
          : mean_values[mean_values_.count() == 1 ? 0 : c];
      for (int h = 0; h < out_h; ++h) {
        const int64_t row = (static_cast<int64_t>(c) * height + h_off + h) * width + w_off;
        float* dst = out + ((static_cast<int64_t>(n) * channels + c) * out_h + h) * out_w;
        for (int w = 0; w < out_w; ++w) {
          float x = static_cast<float>(item[row + w]);
          if (mean) {
            x = (x - mean[row + w]) * scale;
          } else if (mean_values) {
            x = (x - mean_value) * scale;
          } else {
            x = x * scale;
          }
          dst[mirror ? out_w - 1 - w : w] = x;
        }
      }
    }
  }
}

#ifndef CPU_ONLY
FeedLayer::~FeedLayer() {
  if (staged_) cudaEventSynchronize(staged_);
  if (upload_) cudaStreamSynchronize(upload_);
  if (staging_) cudaFreeHost(staging_);
  for (cudaEvent_t event : {staged_, uploaded_, consumed_}) {
    if (event) cudaEventDestroy(event);
  }
  if (upload_) cudaStreamDestroy(upload_);
}

namespace {
size_t Aligned(size_t bytes) { return (bytes + 15) / 16 * 16; }
}  // namespace

// Every top crosses in an asynchronous copy from pinned memory: no
// synchronous copy (a labels' cudaMemcpy would wait for the GPU) per pass.
// The transformed top crosses raw (uint8 stays uint8: a quarter of the
// floats' bytes) with its draws, on a stream of its own, so that it overlaps
// the previous pass's backward (Caffe's Forward waits for the loss, not for
// Backward); the default stream waits for it, then makes it floats on the
// device. The small tops (labels) go on the default stream: the previous
// pass's loss layer may still be reading their blobs.
void FeedLayer::Forward_gpu(const std::vector<Blob<float>*>& bottom,
                            const std::vector<Blob<float>*>& top) {
  const sn_batch batch = Fetch(static_cast<int>(top.size()));
  std::vector<int> draws;
  size_t raw_bytes = 0;
  if (transform_) {
    CheckTransformInput(batch, top[0]);
    draws = Draws(top[0]->num(), batch.shape[0][2], batch.shape[0][3]);
    raw_bytes = BatchCount(batch, 0) * (batch.dtype[0] == SN_UINT8 ? 1 : sizeof(float));
  }
  const size_t draw_bytes = Aligned(draws.size() * sizeof(int));
  std::vector<size_t> offsets(top.size(), 0);
  size_t total = draw_bytes + Aligned(raw_bytes);
  for (size_t i = transform_ ? 1 : 0; i < top.size(); ++i) {
    offsets[i] = total;
    total += Aligned(PlainCount(batch, i, top[i]) * sizeof(float));
  }
  uint8_t* host = Stage(total);
  uint8_t* device = nullptr;  // the draws and the raw batch, for the transform kernel
  if (transform_) {
    device = RawBuffer(draw_bytes + raw_bytes);
    std::memcpy(host, draws.data(), draws.size() * sizeof(int));
    std::memcpy(host + draw_bytes, batch.data[0], raw_bytes);
    Upload(device, host, draw_bytes + raw_bytes);
  }
  for (size_t i = transform_ ? 1 : 0; i < top.size(); ++i) {
    float* staged = reinterpret_cast<float*>(host + offsets[i]);
    ToFloat(batch, i, top[i]->count(), staged);
    CUDA_CHECK(cudaMemcpyAsync(top[i]->mutable_gpu_data(), staged,
                               top[i]->count() * sizeof(float), cudaMemcpyHostToDevice,
                               cudaStreamLegacy));
  }
  CUDA_CHECK(cudaEventRecord(staged_, cudaStreamLegacy));  // after the upload too
  if (transform_) {
    TransformOnDevice(batch, device, draw_bytes, top[0]);
    CUDA_CHECK(cudaEventRecord(consumed_, cudaStreamLegacy));
  }
}

// The device buffer of the raw batch and its draws, of at least `bytes`.
uint8_t* FeedLayer::RawBuffer(size_t bytes) {
  if (!upload_) {
    CUDA_CHECK(cudaStreamCreateWithFlags(&upload_, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_, cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&consumed_, cudaEventDisableTiming));
  }
  if (!raw_ || raw_->size() < bytes) {
    raw_.reset(new caffe::SyncedMemory(bytes));
    raw_->mutable_gpu_data();
    // its first touch clears it on the default stream: the upload waits
    CUDA_CHECK(cudaEventRecord(consumed_, cudaStreamLegacy));
  }
  return static_cast<uint8_t*>(raw_->mutable_gpu_data());
}

// The raw batch to the device on the upload stream, once the last transform
// has read the buffer; the default stream's next work waits for it.
void FeedLayer::Upload(uint8_t* device, const uint8_t* host, size_t bytes) {
  CUDA_CHECK(cudaStreamWaitEvent(upload_, consumed_, 0));
  CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyHostToDevice, upload_));
  CUDA_CHECK(cudaEventRecord(uploaded_, upload_));
  CUDA_CHECK(cudaStreamWaitEvent(cudaStreamLegacy, uploaded_, 0));
}

// Pinned host memory for the next upload, once the previous one has left it.
uint8_t* FeedLayer::Stage(size_t bytes) {
  if (!staged_) CUDA_CHECK(cudaEventCreateWithFlags(&staged_, cudaEventDisableTiming));
  CUDA_CHECK(cudaEventSynchronize(staged_));
  if (bytes > staging_bytes_) {
    if (staging_) CUDA_CHECK(cudaFreeHost(staging_));
    staging_ = nullptr;
    staging_bytes_ = 0;
    CUDA_CHECK(cudaMallocHost(reinterpret_cast<void**>(&staging_), bytes));
    staging_bytes_ = bytes;
  }
  return staging_;
}

void FeedLayer::TransformOnDevice(const sn_batch& batch, const uint8_t* device,
                                  size_t draw_bytes, Blob<float>* top) {
  TransformArgs args;
  args.num = top->num();
  args.channels = top->channels();
  args.height = batch.shape[0][2];
  args.width = batch.shape[0][3];
  args.out_h = top->height();
  args.out_w = top->width();
  args.scale = transform_param_.scale();
  args.mean = mean_.count() ? mean_.gpu_data() : nullptr;
  args.mean_values = mean_values_.count() ? mean_values_.gpu_data() : nullptr;
  args.num_mean_values = mean_values_.count();
  args.draws = reinterpret_cast<const int*>(device);
  float* out = top->mutable_gpu_data();
  if (batch.dtype[0] == SN_UINT8) {
    TransformOnGpu(device + draw_bytes, args, out, cudaStreamLegacy);
  } else {
    TransformOnGpu(reinterpret_cast<const float*>(device + draw_bytes), args, out,
                   cudaStreamLegacy);
  }
  CUDA_POST_KERNEL_CHECK;
}
#endif

// Registered by hand: Caffe's REGISTER_LAYER_CLASS also wants a double layer.
static boost::shared_ptr<caffe::Layer<float> > CreateFeedLayer(
    const caffe::LayerParameter& param) {
  return boost::shared_ptr<caffe::Layer<float> >(new FeedLayer(param));
}
static caffe::LayerRegisterer<float> g_feed_layer_registerer("SparkNetFeed", CreateFeedLayer);

}  // namespace sparknet
