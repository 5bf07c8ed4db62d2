// FeedLayer ("SparkNetFeed"): a Caffe data layer whose minibatches are handed
// over by the embedding program through a callback, as SparkNet's
// JavaDataLayer took them from the JVM. Its tops are shaped by an
// input_param, exactly like Caffe's Input layer, and top 0 honours the
// layer's transform_param (scale, mean_file/mean_value, crop_size, mirror)
// with Caffe's own DataTransformer.
#ifndef SPARKNET_FEED_LAYER_HPP_
#define SPARKNET_FEED_LAYER_HPP_

#include <string>
#include <vector>

#include "caffe/blob.hpp"
#include "caffe/data_transformer.hpp"
#include "caffe/layer.hpp"
#include "sparknet_caffe.h"

namespace sparknet {

// Thrown when the callback fails; the shim maps it to SN_ERR_FEED.
class FeedError : public std::runtime_error {
 public:
  explicit FeedError(const std::string& what) : std::runtime_error(what) {}
};

class FeedLayer : public caffe::Layer<float> {
 public:
  explicit FeedLayer(const caffe::LayerParameter& param)
      : caffe::Layer<float>(param), fn_(NULL), user_(NULL) {}
  void LayerSetUp(const std::vector<caffe::Blob<float>*>& bottom,
                  const std::vector<caffe::Blob<float>*>& top) override;
  void Reshape(const std::vector<caffe::Blob<float>*>& bottom,
               const std::vector<caffe::Blob<float>*>& top) override {}
  const char* type() const override { return "SparkNetFeed"; }
  int ExactNumBottomBlobs() const override { return 0; }
  int MinTopBlobs() const override { return 1; }
  int MaxTopBlobs() const override { return SN_MAX_TOPS; }

  void set_feed(sn_feed_fn fn, void* user) { fn_ = fn; user_ = user; }

 protected:
  void Forward_cpu(const std::vector<caffe::Blob<float>*>& bottom,
                   const std::vector<caffe::Blob<float>*>& top) override;
  void Forward_gpu(const std::vector<caffe::Blob<float>*>& bottom,
                   const std::vector<caffe::Blob<float>*>& top) override {
    Forward_cpu(bottom, top);  // tops are filled on the host; Caffe syncs them
  }
  void Backward_cpu(const std::vector<caffe::Blob<float>*>& top,
                    const std::vector<bool>& propagate_down,
                    const std::vector<caffe::Blob<float>*>& bottom) override {}
  void Backward_gpu(const std::vector<caffe::Blob<float>*>& top,
                    const std::vector<bool>& propagate_down,
                    const std::vector<caffe::Blob<float>*>& bottom) override {}

 private:
  void CopyTop(const sn_batch& batch, int i, caffe::Blob<float>* top);
  void TransformTop(const sn_batch& batch, caffe::Blob<float>* top);

  sn_feed_fn fn_;
  void* user_;
  bool transform_;
  boost::shared_ptr<caffe::DataTransformer<float> > transformer_;
  caffe::Blob<float> staging_;  // top 0 before its transform
};

}  // namespace sparknet

#endif  // SPARKNET_FEED_LAYER_HPP_
