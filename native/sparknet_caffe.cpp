// sparknet_caffe.cpp: the C ABI of sparknet_caffe.h over caffe::Solver/Net.
#include "sparknet_caffe.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "caffe/caffe.hpp"
#include "caffe/sgd_solvers.hpp"
#include "caffe/util/fatal.hpp"
#include "caffe/util/upgrade_proto.hpp"
#include "feed_layer.hpp"

using caffe::Blob;
using caffe::Caffe;
using caffe::Net;
using caffe::Solver;

namespace {

thread_local std::string last_error;

sn_status Fail(sn_status status, const std::string& message) {
  last_error = message;
  return status;
}

struct ArgumentError : std::runtime_error {
  explicit ArgumentError(const std::string& what) : std::runtime_error(what) {}
};
struct IOError : std::runtime_error {
  explicit IOError(const std::string& what) : std::runtime_error(what) {}
};

// Runs `body`, turning every exception into a status and a message.
template <typename F>
sn_status Guard(F body) {
  try {
    body();
    return SN_OK;
  } catch (const caffe::FatalError& e) {
    return Fail(SN_ERR_CAFFE, e.what());
  } catch (const sparknet::FeedError& e) {
    return Fail(SN_ERR_FEED, e.what());
  } catch (const ArgumentError& e) {
    return Fail(SN_ERR_ARGUMENT, e.what());
  } catch (const IOError& e) {
    return Fail(SN_ERR_IO, e.what());
  } catch (const std::bad_alloc&) {
    return Fail(SN_ERR_INTERNAL, "out of memory");
  } catch (const std::exception& e) {
    return Fail(SN_ERR_INTERNAL, e.what());
  } catch (...) {
    return Fail(SN_ERR_INTERNAL, "unknown C++ exception");
  }
}

// The protected members a snapshot needs, reached the way the language
// allows: a pointer to member formed inside a derived class.
struct SolverAccess : Solver<float> {
  static int Solver<float>::*iter() { return &SolverAccess::iter_; }
  static int Solver<float>::*current_step() { return &SolverAccess::current_step_; }
};
struct SGDAccess : caffe::SGDSolver<float> {
  typedef std::vector<boost::shared_ptr<Blob<float> > > Blobs;
  static Blobs caffe::SGDSolver<float>::*history() { return &SGDAccess::history_; }
};

// Accumulates the train net's outputs after every iteration of Step().
class OutputMeans final : public Solver<float>::Callback {
 public:
  explicit OutputMeans(Net<float>* net) : net_(net), steps_(0) {}
  void Reset() {
    sums_.assign(net_->output_blobs().size(), 0.0);
    steps_ = 0;
  }
  void Means(double* out, int capacity) const {
    for (size_t i = 0; i < sums_.size() && static_cast<int>(i) < capacity; ++i) {
      out[i] = steps_ ? sums_[i] / steps_ : 0.0;
    }
  }

 protected:
  void on_start() override {}
  void on_gradients_ready() override {
    const std::vector<Blob<float>*>& outputs = net_->output_blobs();
    for (size_t i = 0; i < outputs.size(); ++i) sums_[i] += BlobMean(*outputs[i]);
    ++steps_;
  }

 public:
  static double BlobMean(const Blob<float>& blob) {
    const float* data = blob.cpu_data();
    double sum = 0;
    for (int j = 0; j < blob.count(); ++j) sum += data[j];
    return blob.count() ? sum / blob.count() : 0.0;
  }

 private:
  Net<float>* net_;
  std::vector<double> sums_;
  int steps_;
};

void WriteProtoChecked(const google::protobuf::Message& proto, const char* path) {
  std::ofstream out(path, std::ios::out | std::ios::trunc | std::ios::binary);
  if (!out) throw IOError(std::string("cannot open ") + path + " for writing");
  if (!proto.SerializeToOstream(&out)) throw IOError(std::string("cannot write ") + path);
  out.close();
  if (!out) throw IOError(std::string("cannot write ") + path);
}

}  // namespace

// One learnable blob that the net owns (shared copies excluded).
struct ParamRef {
  Blob<float>* blob;
  std::string layer;
  int blob_index;
};

// The BLAS's and OpenMP's thread counts. Weak: resolved from the libraries
// libcaffe loads (OpenBLAS; libgomp where Caffe is built with OpenMP), and
// left alone where a build has neither.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
extern "C" void omp_set_num_threads(int) __attribute__((weak));

struct sn_net {
  int device;  // < 0: CPU
  int threads = 0;  // CPU threads for this net's passes; 0: the libraries' own
  boost::shared_ptr<Solver<float> > solver;
  boost::shared_ptr<Net<float> > test_only;
  std::unique_ptr<OutputMeans> train_means;
  std::vector<ParamRef> params;  // in Caffe's params() order
  int64_t param_total = 0;

  // Caffe's mode and device are per thread: set them on every entry.
  // OpenMP's count is per thread too; OpenBLAS's is one for the process.
  void Enter() const {
    if (threads > 0 && openblas_set_num_threads) openblas_set_num_threads(threads);
    if (threads > 0 && omp_set_num_threads) omp_set_num_threads(threads);
    if (device < 0) {
      Caffe::set_mode(Caffe::CPU);
    } else {
      Caffe::SetDevice(device);
      Caffe::set_mode(Caffe::GPU);
    }
  }
  // A call returns once its work is done on the GPU too: timings hold, and
  // an asynchronous kernel fault is reported by the call that caused it.
  void Finish() const {
#ifndef CPU_ONLY
    if (device >= 0) CUDA_CHECK(cudaDeviceSynchronize());
#endif
  }
  Net<float>* train_net() const { return solver ? solver->net().get() : nullptr; }
  Net<float>* test_net() const {
    if (test_only) return test_only.get();
    if (solver && !solver->test_nets().empty()) return solver->test_nets()[0].get();
    return nullptr;
  }
  Net<float>* main_net() const { return solver ? train_net() : test_only.get(); }
  Net<float>* net_for(int phase) const {
    Net<float>* net = phase == SN_PHASE_TRAIN ? train_net() : test_net();
    if (net == nullptr) {
      throw ArgumentError(phase == SN_PHASE_TRAIN ? "this net has no solver (test-only)"
                                                  : "this net has no test net");
    }
    return net;
  }
  // Owned learnable blobs in params() order, named by layer and blob index.
  void IndexParams() {
    Net<float>* net = main_net();
    for (size_t i = 0; i < net->params().size(); ++i) {
      if (net->param_owners()[i] >= 0) continue;
      Blob<float>* blob = net->params()[i].get();
      for (size_t l = 0; l < net->layers().size(); ++l) {
        const auto& blobs = net->layers()[l]->blobs();
        for (size_t j = 0; j < blobs.size(); ++j) {
          if (blobs[j].get() == blob) {
            params.push_back({blob, net->layer_names()[l], static_cast<int>(j)});
          }
        }
      }
      param_total += blob->count();
    }
  }
};

// The solver a call needs, or ArgumentError (a test-only net has none).
static caffe::Solver<float>* RequireSolver(sn_net* net) {
  if (!net->solver) throw ArgumentError("this net has no solver (test-only)");
  return net->solver.get();
}

// The SGD-family solver whose history `what` reads or writes, or ArgumentError.
static caffe::SGDSolver<float>* SgdSolver(sn_net* net, const char* what) {
  auto* sgd = dynamic_cast<caffe::SGDSolver<float>*>(RequireSolver(net));
  if (sgd == nullptr) throw ArgumentError(std::string(what) + " is only kept for SGD-family solvers");
  return sgd;
}

namespace sparknet {
// For the other translation units of the shim (image_codec.cpp).
void set_last_error(const std::string& message) { last_error = message; }
}  // namespace sparknet

extern "C" {

const char* sn_last_error(void) { return last_error.c_str(); }

const char* sn_version(void) { return SN_CAFFE_VERSION; }

int sn_has_cuda(void) {
#ifdef CPU_ONLY
  return 0;
#else
  return 1;
#endif
}

sn_status sn_gpu_count(int* count) {
  return Guard([&] {
#ifdef CPU_ONLY
    *count = 0;
#else
    if (cudaGetDeviceCount(count) != cudaSuccess) *count = 0;
#endif
  });
}

void sn_set_log_level(int level) { FLAGS_minloglevel = level; }

static void InitOnce() {
  static bool done = [] {
    caffe::SetFatalThrows(true);
    if (!google::IsGoogleLoggingInitialized()) {
      FLAGS_logtostderr = 1;
      google::InitGoogleLogging("sparknet_caffe");
    }
    return true;
  }();
  (void)done;
}

sn_status sn_net_create(const void* solver_param, size_t solver_len, const void* net_param,
                        size_t net_len, int device, int64_t seed, sn_net** out) {
  InitOnce();
  *out = nullptr;
  try {
    caffe::NetParameter net;
    if (!net.ParseFromArray(net_param, static_cast<int>(net_len))) {
      return Fail(SN_ERR_ARGUMENT, "net_param is not a serialized caffe.NetParameter");
    }
    caffe::SolverParameter solver;
    if (solver_len && !solver.ParseFromArray(solver_param, static_cast<int>(solver_len))) {
      return Fail(SN_ERR_ARGUMENT, "solver_param is not a serialized caffe.SolverParameter");
    }
    int gpus = 0;
    sn_gpu_count(&gpus);
    if (device >= 0 && !sn_has_cuda()) {
      return Fail(SN_ERR_ARGUMENT, "device gpu:" + std::to_string(device) +
                  " requested, but this pysparknet was built without CUDA (CPU only)");
    }
    if (device >= gpus && sn_has_cuda()) {
      return Fail(SN_ERR_ARGUMENT, "device gpu:" + std::to_string(device) +
                  " does not exist: " + std::to_string(gpus) + " GPU(s) visible");
    }
    std::unique_ptr<sn_net> handle(new sn_net());
    handle->device = device;
    sn_status status = Guard([&] {
      handle->Enter();
      if (seed >= 0) Caffe::set_random_seed(static_cast<unsigned int>(seed));
      caffe::UpgradeNetAsNeeded("<net_param>", &net);
      if (solver_len) {
        caffe::UpgradeSolverAsNeeded("<solver_param>", &solver);
        solver.clear_net();
        solver.clear_train_net();
        solver.clear_train_net_param();
        *solver.mutable_net_param() = net;
        handle->solver.reset(caffe::SolverRegistry<float>::CreateSolver(solver));
        handle->train_means.reset(new OutputMeans(handle->train_net()));
        handle->solver->add_callback(handle->train_means.get());
      } else {
        net.mutable_state()->set_phase(caffe::TEST);
        handle->test_only.reset(new Net<float>(net));
      }
      handle->IndexParams();
    });
    if (status == SN_OK) *out = handle.release();
    return status;
  } catch (...) {
    return Fail(SN_ERR_INTERNAL, "unknown C++ exception while creating the net");
  }
}

void sn_net_destroy(sn_net* net) {
  if (net == nullptr) return;
  try {
    net->Enter();
    delete net;
  } catch (...) {
    // Never throw into the caller's garbage collector.
  }
}

sn_status sn_net_set_feed(sn_net* net, sn_feed_fn fn, void* user) {
  return Guard([&] {
    std::vector<Net<float>*> nets;
    if (net->train_net()) nets.push_back(net->train_net());
    if (net->solver) {
      for (auto& test : net->solver->test_nets()) nets.push_back(test.get());
    } else {
      nets.push_back(net->test_only.get());
    }
    for (Net<float>* n : nets) {
      for (auto& layer : n->layers()) {
        auto* feed = dynamic_cast<sparknet::FeedLayer*>(layer.get());
        if (feed) feed->set_feed(fn, user);
      }
    }
  });
}

sn_status sn_net_has_solver(sn_net* net, int* has_solver) {
  *has_solver = net->solver ? 1 : 0;
  return SN_OK;
}

sn_status sn_net_iter(sn_net* net, int* iter) {
  *iter = net->solver ? net->solver->iter() : 0;
  return SN_OK;
}

sn_status sn_net_set_iter(sn_net* net, int iter) {
  return Guard([&] {
    if (iter < 0) throw ArgumentError("iter must be >= 0");
    RequireSolver(net)->*SolverAccess::iter() = iter;
  });
}

sn_status sn_net_set_threads(sn_net* net, int threads) {
  if (threads < 1) return Fail(SN_ERR_ARGUMENT, "threads must be >= 1");
  net->threads = threads;
  return SN_OK;
}

sn_status sn_net_num_outputs(sn_net* net, int phase, int* count) {
  return Guard([&] { *count = static_cast<int>(net->net_for(phase)->output_blobs().size()); });
}

sn_status sn_net_output_name(sn_net* net, int phase, int index, const char** name) {
  return Guard([&] {
    Net<float>* n = net->net_for(phase);
    if (index < 0 || index >= static_cast<int>(n->output_blob_indices().size())) {
      throw ArgumentError("output index out of range");
    }
    *name = n->blob_names()[n->output_blob_indices()[index]].c_str();
  });
}

sn_status sn_net_blob_shape(sn_net* net, int phase, const char* name, int* ndim,
                            int64_t* shape) {
  return Guard([&] {
    Net<float>* n = net->net_for(phase);
    if (!n->has_blob(name)) throw ArgumentError(std::string("no blob named '") + name + "'");
    const std::vector<int>& s = n->blob_by_name(name)->shape();
    if (s.size() > SN_MAX_DIMS) throw ArgumentError("blob has too many axes");
    *ndim = static_cast<int>(s.size());
    for (size_t d = 0; d < s.size(); ++d) shape[d] = s[d];
  });
}

sn_status sn_net_blob_data(sn_net* net, int phase, const char* name, float* out,
                           int64_t count) {
  return Guard([&] {
    net->Enter();
    Net<float>* n = net->net_for(phase);
    if (n == nullptr || !n->has_blob(name)) {
      throw ArgumentError(std::string("no blob named '") + name + "'");
    }
    const Blob<float>& blob = *n->blob_by_name(name);
    if (count != blob.count()) {
      throw ArgumentError(std::string("blob '") + name + "' holds " +
                          std::to_string(blob.count()) + " values, not " + std::to_string(count));
    }
    std::memcpy(out, blob.cpu_data(), count * sizeof(float));
  });
}

sn_status sn_net_train(sn_net* net, int iters, double* means, int capacity) {
  return Guard([&] {
    if (iters < 0) throw ArgumentError("iters must be >= 0");
    caffe::Solver<float>* solver = RequireSolver(net);
    net->Enter();
    net->train_means->Reset();
    solver->Step(iters);
    net->Finish();
    net->train_means->Means(means, capacity);
  });
}

sn_status sn_net_forward_backward(sn_net* net, int iters) {
  if (iters < 0) return Fail(SN_ERR_ARGUMENT, "iters must be >= 0");
  return Guard([&] {
    net->Enter();
    Net<float>* train = net->net_for(SN_PHASE_TRAIN);
    for (int it = 0; it < iters; ++it) train->ForwardBackward();
    net->Finish();
  });
}

sn_status sn_net_test(sn_net* net, int iters, double* means, int capacity) {
  if (iters < 1) return Fail(SN_ERR_ARGUMENT, "iters must be >= 1");
  return Guard([&] {
    net->Enter();
    Net<float>* test = net->net_for(SN_PHASE_TEST);
    if (net->solver) test->ShareTrainedLayersWith(net->train_net());
    std::vector<double> sums(test->output_blobs().size(), 0.0);
    for (int it = 0; it < iters; ++it) {
      const std::vector<Blob<float>*>& outputs = test->Forward();
      for (size_t i = 0; i < outputs.size(); ++i) sums[i] += OutputMeans::BlobMean(*outputs[i]);
    }
    for (size_t i = 0; i < sums.size() && static_cast<int>(i) < capacity; ++i) {
      means[i] = sums[i] / iters;
    }
  });
}

sn_status sn_net_num_params(sn_net* net, int* count, int64_t* total) {
  *count = static_cast<int>(net->params.size());
  *total = net->param_total;
  return SN_OK;
}

sn_status sn_net_param_info(sn_net* net, int index, const char** layer, int* blob_index,
                            int* ndim, int64_t* shape) {
  return Guard([&] {
    if (index < 0 || index >= static_cast<int>(net->params.size())) {
      throw ArgumentError("param index out of range");
    }
    const ParamRef& ref = net->params[index];
    *layer = ref.layer.c_str();
    *blob_index = ref.blob_index;
    const std::vector<int>& s = ref.blob->shape();
    if (s.size() > SN_MAX_DIMS) throw ArgumentError("param has too many axes");
    *ndim = static_cast<int>(s.size());
    for (size_t d = 0; d < s.size(); ++d) shape[d] = s[d];
  });
}

static void CheckCount(const sn_net* net, int64_t count) {
  if (count != net->param_total) {
    throw ArgumentError("weight buffer holds " + std::to_string(count) +
                        " floats; the net has " + std::to_string(net->param_total));
  }
}

sn_status sn_net_get_weights(sn_net* net, float* out, int64_t count) {
  return Guard([&] {
    net->Enter();
    CheckCount(net, count);
    for (const ParamRef& ref : net->params) {
      const float* from = ref.blob->cpu_data();
      if (from != out) std::memcpy(out, from, ref.blob->count() * sizeof(float));
      out += ref.blob->count();  // (equal: the weights live in `out`, shared)
    }
  });
}

sn_status sn_net_set_weights(sn_net* net, const float* in, int64_t count) {
  return Guard([&] {
    net->Enter();
    CheckCount(net, count);
    for (const ParamRef& ref : net->params) {
      float* to = ref.blob->mutable_cpu_data();
      if (to != in) std::memcpy(to, in, ref.blob->count() * sizeof(float));
      in += ref.blob->count();
    }
  });
}

// The weights live in `in` from now on, uncopied: each learnable blob's data points
// into it (Caffe frees the blob's own memory) until the next call or the net's end,
// and the caller keeps it alive. Calling it again after writing new weights into
// `in` marks the host's copy the newest, so a GPU net uploads it before its next
// step (Caffe's SyncedMemory, head at CPU).
sn_status sn_net_share_weights(sn_net* net, float* in, int64_t count) {
  return Guard([&] {
    net->Enter();
    CheckCount(net, count);
    for (const ParamRef& ref : net->params) {
      ref.blob->set_cpu_data(in);
      in += ref.blob->count();
    }
  });
}

// After steps on shared weights: the newest weights in the shared buffer (a GPU
// net copies them down; on the CPU they are there already).
sn_status sn_net_sync_shared_weights(sn_net* net) {
  return Guard([&] {
    net->Enter();
    for (const ParamRef& ref : net->params) ref.blob->cpu_data();
  });
}

static SGDAccess::Blobs& History(sn_net* net) {
  return SgdSolver(net, "solver history")->*SGDAccess::history();
}

static int64_t HistoryCount(sn_net* net) {
  int64_t total = 0;
  for (const auto& blob : History(net)) total += blob->count();
  return total;
}

static void CheckHistoryCount(sn_net* net, int64_t count) {
  const int64_t total = HistoryCount(net);
  if (count != total) {
    throw ArgumentError("history buffer holds " + std::to_string(count) +
                        " floats; the solver has " + std::to_string(total));
  }
}

sn_status sn_net_history_size(sn_net* net, int64_t* count) {
  return Guard([&] {
    net->Enter();
    *count = HistoryCount(net);
  });
}

sn_status sn_net_get_history(sn_net* net, float* out, int64_t count) {
  return Guard([&] {
    net->Enter();
    CheckHistoryCount(net, count);
    for (const auto& blob : History(net)) {
      std::memcpy(out, blob->cpu_data(), blob->count() * sizeof(float));
      out += blob->count();
    }
  });
}

sn_status sn_net_set_history(sn_net* net, const float* in, int64_t count) {
  return Guard([&] {
    net->Enter();
    CheckHistoryCount(net, count);
    for (const auto& blob : History(net)) {
      std::memcpy(blob->mutable_cpu_data(), in, blob->count() * sizeof(float));
      in += blob->count();
    }
  });
}

sn_status sn_net_save_caffemodel(sn_net* net, const char* path) {
  return Guard([&] {
    net->Enter();
    caffe::NetParameter param;
    net->main_net()->ToProto(&param, false);
    WriteProtoChecked(param, path);
  });
}

static void LoadCaffemodel(sn_net* net, const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw IOError("cannot open " + path);
  net->main_net()->CopyTrainedLayersFrom(path);
}

sn_status sn_net_load_caffemodel(sn_net* net, const char* path) {
  return Guard([&] {
    net->Enter();
    LoadCaffemodel(net, path);
  });
}

sn_status sn_net_save_state(sn_net* net, const char* path, const char* model_path) {
  return Guard([&] {
    caffe::SGDSolver<float>* sgd = SgdSolver(net, "solver state");
    net->Enter();
    caffe::SolverState state;
    state.set_iter(net->solver->iter());
    state.set_learned_net(model_path);
    state.set_current_step(net->solver.get()->*SolverAccess::current_step());
    for (const auto& blob : sgd->*SGDAccess::history()) blob->ToProto(state.add_history());
    WriteProtoChecked(state, path);
  });
}

sn_status sn_net_restore_state(sn_net* net, const char* path, const char* model_path) {
  return Guard([&] {
    caffe::SGDSolver<float>* sgd = SgdSolver(net, "solver state");
    net->Enter();
    std::ifstream probe(path, std::ios::binary);
    if (!probe) throw IOError(std::string("cannot open ") + path);
    caffe::SolverState state;
    caffe::ReadProtoFromBinaryFileOrDie(path, &state);
    SGDAccess::Blobs& history = sgd->*SGDAccess::history();
    if (state.history_size() != static_cast<int>(history.size())) {
      throw ArgumentError(std::string(path) + " holds " + std::to_string(state.history_size()) +
                          " history blobs; this solver has " + std::to_string(history.size()));
    }
    const std::string weights = model_path ? model_path : state.learned_net();
    if (!weights.empty()) LoadCaffemodel(net, weights);
    for (size_t i = 0; i < history.size(); ++i) history[i]->FromProto(state.history(i), false);
    net->solver.get()->*SolverAccess::iter() = state.iter();
    net->solver.get()->*SolverAccess::current_step() = state.current_step();
  });
}

}  // extern "C"
