/* sparknet_caffe.h: the C ABI pysparknet loads with ctypes.
 *
 * One handle (sn_net) owns a Caffe solver with its train and test nets, or a
 * test-only net. Only plain C types cross this boundary. Every function
 * returns an sn_status; on failure sn_last_error() holds the cause (Caffe's
 * own CHECK message where Caffe raised it), per thread, until the next call.
 */
#ifndef SPARKNET_CAFFE_H_
#define SPARKNET_CAFFE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SN_EXPORT __attribute__((visibility("default")))

typedef enum {
  SN_OK = 0,
  SN_ERR_CAFFE = 1,     /* a Caffe CHECK or LOG(FATAL): bad net, shape, file */
  SN_ERR_ARGUMENT = 2,  /* the caller passed something invalid */
  SN_ERR_IO = 3,        /* a file could not be read or written */
  SN_ERR_FEED = 4,      /* the feed callback reported a failure */
  SN_ERR_INTERNAL = 5   /* anything else (out of memory, ...) */
} sn_status;

enum { SN_PHASE_TRAIN = 0, SN_PHASE_TEST = 1 };
enum { SN_FLOAT32 = 0, SN_UINT8 = 1 };
enum { SN_MAX_TOPS = 8, SN_MAX_DIMS = 8 };

/* One minibatch for a feed layer, filled in by the feed callback. Each top's
 * buffer is C-contiguous, owned by the caller, and only read during the
 * callback's forward pass. Top 0 goes through the layer's transform_param
 * (scale, mean, crop, mirror) as Caffe's data layers do; the others are
 * copied as they are. */
typedef struct {
  int num_tops;                       /* set by the layer */
  const void* data[SN_MAX_TOPS];
  int dtype[SN_MAX_TOPS];             /* SN_FLOAT32 or SN_UINT8 */
  int ndim[SN_MAX_TOPS];
  int64_t shape[SN_MAX_TOPS][SN_MAX_DIMS];
} sn_batch;

/* Called once per forward pass of a feed layer; returns 0 on success. */
typedef int (*sn_feed_fn)(void* user, int phase, const char* layer, sn_batch* batch);

typedef struct sn_net sn_net;

SN_EXPORT const char* sn_last_error(void);
SN_EXPORT const char* sn_version(void);
SN_EXPORT int sn_has_cuda(void);
SN_EXPORT sn_status sn_gpu_count(int* count);
/* Decode an encoded image (JPEG, PNG, ...) with the OpenCV Caffe links, as
 * Caffe's ReadImageToDatum / DecodeDatumToCVMat do: color < 0 keeps the file's
 * channels (grey 1, else 3), 0 grey, 1 colour (BGR). height and width > 0
 * resize as convert_imageset --resize_height/--resize_width (cv::resize,
 * bilinear). Writes (C, H, W) uint8 into out and the shape into shape[3]; if
 * out is too small, sets shape, returns SN_ERR_ARGUMENT, and keeps the decoded
 * image so a second call with the same arguments only copies it. */
SN_EXPORT sn_status sn_decode_image(const void* data, size_t length, int color, int height,
                                    int width, void* out, size_t capacity, int64_t* shape);
/* glog's minimum level: 0 INFO, 1 WARNING, 2 ERROR. */
SN_EXPORT void sn_set_log_level(int level);

/* solver_len == 0 makes a test-only net (TEST phase) from net_param.
 * device < 0: CPU; otherwise the CUDA device id. seed < 0: Caffe's default. */
SN_EXPORT sn_status sn_net_create(const void* solver_param, size_t solver_len,
                                  const void* net_param, size_t net_len,
                                  int device, int64_t seed, sn_net** out);
SN_EXPORT void sn_net_destroy(sn_net* net);
SN_EXPORT sn_status sn_net_set_feed(sn_net* net, sn_feed_fn fn, void* user);
SN_EXPORT sn_status sn_net_has_solver(sn_net* net, int* has_solver);
SN_EXPORT sn_status sn_net_iter(sn_net* net, int* iter);
/* Move the solver to iteration `iter` (learning-rate schedule; a resumed run). */
SN_EXPORT sn_status sn_net_set_iter(sn_net* net, int iter);

/* CPU threads for this net's passes (the BLAS's and OpenMP's), applied on
 * every call that runs the net; OpenBLAS's count is process-wide. */
SN_EXPORT sn_status sn_net_set_threads(sn_net* net, int threads);

/* Output blobs of the train (phase 0) or test (phase 1) net. */
SN_EXPORT sn_status sn_net_num_outputs(sn_net* net, int phase, int* count);
SN_EXPORT sn_status sn_net_output_name(sn_net* net, int phase, int index, const char** name);
/* Shape of any blob of the given phase's net, by name. */
SN_EXPORT sn_status sn_net_blob_shape(sn_net* net, int phase, const char* name,
                                      int* ndim, int64_t* shape);
/* Copy of a blob's values as the last pass left them; count must be its size. */
SN_EXPORT sn_status sn_net_blob_data(sn_net* net, int phase, const char* name, float* out,
                                     int64_t count);

/* Step the solver; means[i] is train output i averaged over the steps. */
SN_EXPORT sn_status sn_net_train(sn_net* net, int iters, double* means, int capacity);
/* Forward + backward passes of the train net, no update (what `caffe time` runs). */
SN_EXPORT sn_status sn_net_forward_backward(sn_net* net, int iters);
/* Run the test net iters times; means[i] is test output i averaged. */
SN_EXPORT sn_status sn_net_test(sn_net* net, int iters, double* means, int capacity);

/* Learnable blobs (shared copies excluded), in Caffe's params() order. */
SN_EXPORT sn_status sn_net_num_params(sn_net* net, int* count, int64_t* total);
SN_EXPORT sn_status sn_net_param_info(sn_net* net, int index, const char** layer,
                                      int* blob_index, int* ndim, int64_t* shape);
/* All learnable weights to / from one float32 buffer of `total` floats. */
SN_EXPORT sn_status sn_net_get_weights(sn_net* net, float* out, int64_t count);
SN_EXPORT sn_status sn_net_set_weights(sn_net* net, const float* in, int64_t count);
/* The net's weights live in `in` (count floats) from now on, uncopied; call again
 * after writing into it. The caller keeps `in` alive until the next call or destroy. */
SN_EXPORT sn_status sn_net_share_weights(sn_net* net, float* in, int64_t count);
/* The newest weights into the shared buffer (a GPU net copies them down). */
SN_EXPORT sn_status sn_net_sync_shared_weights(sn_net* net);

/* The solver's history (SGD momentum; Adam's two moments...): all its blobs in
 * Caffe's order, one flat float32 buffer. */
SN_EXPORT sn_status sn_net_history_size(sn_net* net, int64_t* count);
SN_EXPORT sn_status sn_net_get_history(sn_net* net, float* out, int64_t count);
SN_EXPORT sn_status sn_net_set_history(sn_net* net, const float* in, int64_t count);

/* Caffe's binary formats. save_state records `model_path` as learned_net.
 * restore_state loads weights from model_path, or from the state's
 * learned_net when model_path is NULL. */
SN_EXPORT sn_status sn_net_save_caffemodel(sn_net* net, const char* path);
SN_EXPORT sn_status sn_net_load_caffemodel(sn_net* net, const char* path);
SN_EXPORT sn_status sn_net_save_state(sn_net* net, const char* path, const char* model_path);
SN_EXPORT sn_status sn_net_restore_state(sn_net* net, const char* path, const char* model_path);

#ifdef __cplusplus
}
#endif

#endif /* SPARKNET_CAFFE_H_ */
