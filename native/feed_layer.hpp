// FeedLayer ("SparkNetFeed"): a Caffe data layer whose minibatches are handed
// over by the embedding program through a callback, as SparkNet's
// JavaDataLayer took them from the JVM. Its tops are shaped by an
// input_param, exactly like Caffe's Input layer, and top 0 honours the
// layer's transform_param (scale, mean_file/mean_value, crop_size, mirror)
// per image, with the arithmetic and random draws of Caffe's DataTransformer
// on a Datum, so it feeds what Caffe's Data layer would. The transform reads
// uint8 or float32 straight from the caller's buffer in one pass over the
// cropped region.
#ifndef SPARKNET_FEED_LAYER_HPP_
#define SPARKNET_FEED_LAYER_HPP_

#include <string>
#include <vector>

#include "caffe/blob.hpp"
#include "caffe/common.hpp"
#include "caffe/proto/caffe.pb.h"
#include "caffe/syncedmem.hpp"
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
#ifndef CPU_ONLY
  // The transformed top is made on the device from the raw batch.
  void Forward_gpu(const std::vector<caffe::Blob<float>*>& bottom,
                   const std::vector<caffe::Blob<float>*>& top) override;
#endif
  void Backward_cpu(const std::vector<caffe::Blob<float>*>& top,
                    const std::vector<bool>& propagate_down,
                    const std::vector<caffe::Blob<float>*>& bottom) override {}
  void Backward_gpu(const std::vector<caffe::Blob<float>*>& top,
                    const std::vector<bool>& propagate_down,
                    const std::vector<caffe::Blob<float>*>& bottom) override {}

 private:
  void SetUpTransform(caffe::Blob<float>* data);
  sn_batch Fetch(int num_tops);
  int64_t PlainCount(const sn_batch& batch, int i, caffe::Blob<float>* top);
  void CopyTop(const sn_batch& batch, int i, caffe::Blob<float>* top);
  void CheckTransformInput(const sn_batch& batch, caffe::Blob<float>* top);
  void TransformTop(const sn_batch& batch, caffe::Blob<float>* top);
  template <typename T>
  void TransformItems(const T* in, int height, int width, const std::vector<int>& draws,
                      caffe::Blob<float>* top);
  std::vector<int> Draws(int num, int height, int width);
  int Rand(int n);
#ifndef CPU_ONLY
  void TransformOnDevice(const sn_batch& batch, const uint8_t* device, size_t draw_bytes,
                         caffe::Blob<float>* top);
  uint8_t* Stage(size_t bytes);
  uint8_t* RawBuffer(size_t bytes);
  void Upload(uint8_t* device, const uint8_t* host, size_t bytes);
#endif

  sn_feed_fn fn_;
  void* user_;
  bool transform_;
  caffe::TransformationParameter transform_param_;
  caffe::Blob<float> mean_;           // mean_file's blob, (1, C, H, W)
  caffe::Blob<float> mean_values_;    // transform_param's mean_value(s); empty: none
  boost::shared_ptr<caffe::Caffe::RNG> rng_;  // as DataTransformer::InitRand seeds it
#ifndef CPU_ONLY
  // The batch: pinned on the host; its raw top 0 and draws, on the device.
  uint8_t* staging_ = nullptr;
  size_t staging_bytes_ = 0;
  cudaEvent_t staged_ = nullptr;  // the copies out of staging_ have finished
  cudaStream_t upload_ = nullptr;  // the raw batch's copy (non-blocking)
  cudaEvent_t uploaded_ = nullptr;  // that copy has finished
  cudaEvent_t consumed_ = nullptr;  // the transform has read raw_
  boost::shared_ptr<caffe::SyncedMemory> raw_;

 public:
  ~FeedLayer() override;
#endif
};

}  // namespace sparknet

#endif  // SPARKNET_FEED_LAYER_HPP_
