#include "feed_layer.hpp"

#include <cstring>
#include <sstream>

#include "caffe/layer_factory.hpp"

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
  if (transform_) {
    transformer_.reset(new caffe::DataTransformer<float>(
        this->layer_param_.transform_param(), this->phase_));
    transformer_->InitRand();
    CHECK_EQ(top[0]->num_axes(), 4) << "layer '" << this->layer_param_.name()
        << "': transform_param needs a 4-d data top (N, C, H, W)";
  }
}

void FeedLayer::Forward_cpu(const std::vector<Blob<float>*>& bottom,
                            const std::vector<Blob<float>*>& top) {
  const std::string& name = this->layer_param_.name();
  if (fn_ == NULL) {
    throw FeedError("no data for layer '" + name + "' in the " +
                    (this->phase_ == caffe::TRAIN ? "TRAIN" : "TEST") +
                    " phase: set its data first");
  }
  sn_batch batch;
  std::memset(&batch, 0, sizeof(batch));
  batch.num_tops = static_cast<int>(top.size());
  const int phase = this->phase_ == caffe::TRAIN ? SN_PHASE_TRAIN : SN_PHASE_TEST;
  if (fn_(user_, phase, name.c_str(), &batch) != 0) {
    throw FeedError("the data feed of layer '" + name + "' failed");
  }
  for (size_t i = 0; i < top.size(); ++i) {
    if (batch.data[i] == NULL) {
      throw FeedError("the data feed gave no buffer for top '" +
                      this->layer_param_.top(i) + "' of layer '" + name + "'");
    }
    if (i == 0 && transform_) {
      TransformTop(batch, top[0]);
    } else {
      CopyTop(batch, i, top[i]);
    }
  }
}

void FeedLayer::CopyTop(const sn_batch& batch, int i, Blob<float>* top) {
  const int64_t count = BatchCount(batch, i);
  if (count != top->count()) {
    throw FeedError("top '" + this->layer_param_.top(i) + "' of layer '" +
                    this->layer_param_.name() + "' has shape " + top->shape_string() +
                    " but the feed gave " + ShapeString(batch.ndim[i], batch.shape[i]));
  }
  ToFloat(batch, i, count, top->mutable_cpu_data());
}

void FeedLayer::TransformTop(const sn_batch& batch, Blob<float>* top) {
  // The raw batch may be larger than the top when transform_param crops.
  if (batch.ndim[0] != 4 || batch.shape[0][0] != top->num() ||
      batch.shape[0][1] != top->channels()) {
    throw FeedError("top '" + this->layer_param_.top(0) + "' of layer '" +
                    this->layer_param_.name() + "' takes (" +
                    std::to_string(top->num()) + ", " + std::to_string(top->channels()) +
                    ", H, W) before its transform, but the feed gave " +
                    ShapeString(batch.ndim[0], batch.shape[0]));
  }
  staging_.Reshape(std::vector<int>(batch.shape[0], batch.shape[0] + 4));
  ToFloat(batch, 0, staging_.count(), staging_.mutable_cpu_data());
  transformer_->Transform(&staging_, top);
}

// Registered by hand: Caffe's REGISTER_LAYER_CLASS also wants a double layer.
static boost::shared_ptr<caffe::Layer<float> > CreateFeedLayer(
    const caffe::LayerParameter& param) {
  return boost::shared_ptr<caffe::Layer<float> >(new FeedLayer(param));
}
static caffe::LayerRegisterer<float> g_feed_layer_registerer("SparkNetFeed", CreateFeedLayer);

}  // namespace sparknet
