// Image decoding for the data path, with the OpenCV Caffe itself links: the
// same cv::imdecode flags as Caffe's ReadImageToDatum / DecodeDatumToCVMat and
// the same cv::resize as convert_imageset --resize_*, so pysparknet's pixels
// are Caffe's by construction. Runs without the GIL (ctypes drops it), so
// Python threads decode in parallel.
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <opencv2/core/core.hpp>
#include <opencv2/imgcodecs/imgcodecs.hpp>
#include <opencv2/imgproc/imgproc.hpp>

#include "sparknet_caffe.h"

namespace sparknet {
void set_last_error(const std::string& message);  // sparknet_caffe.cpp
}

namespace {

// The last image this thread decoded, so a caller that learns the shape from
// a first call (out too small) copies it out without decoding twice.
thread_local cv::Mat last_image;
thread_local const void* last_data = nullptr;
thread_local size_t last_length = 0;
thread_local int last_key[3] = {0, 0, 0};

// Interleaved HWC -> planar CHW: cv::split writes each channel straight into
// its plane of the caller's buffer.
void to_chw(const cv::Mat& image, uint8_t* out) {
  const size_t plane = static_cast<size_t>(image.rows) * image.cols;
  std::vector<cv::Mat> planes;
  for (int c = 0; c < image.channels(); ++c) {
    planes.emplace_back(image.rows, image.cols, CV_8UC1, out + c * plane);
  }
  cv::split(image, planes);
}

}  // namespace

extern "C" sn_status sn_decode_image(const void* data, size_t length, int color, int height,
                                     int width, void* out, size_t capacity, int64_t* shape) {
  try {
    if (data == nullptr || length == 0 || shape == nullptr || height < 0 || width < 0) {
      sparknet::set_last_error("sn_decode_image: no data, no shape, or a negative size");
      return SN_ERR_ARGUMENT;
    }
    const bool cached = last_data == data && last_length == length && last_key[0] == color &&
                        last_key[1] == height && last_key[2] == width && !last_image.empty();
    if (!cached) {
      const int flag = color < 0 ? cv::IMREAD_ANYCOLOR
                                 : (color ? cv::IMREAD_COLOR : cv::IMREAD_GRAYSCALE);
      cv::Mat encoded(1, static_cast<int>(length), CV_8UC1, const_cast<void*>(data));
      cv::Mat image = cv::imdecode(encoded, flag);
      if (image.empty()) {
        sparknet::set_last_error("cannot decode image (" + std::to_string(length) +
                                 " bytes): not an image OpenCV reads, or corrupt");
        return SN_ERR_ARGUMENT;
      }
      if (image.depth() != CV_8U) {
        sparknet::set_last_error("cannot decode image: not 8 bits per channel");
        return SN_ERR_ARGUMENT;
      }
      if (height > 0 && width > 0) {
        cv::Mat resized;
        cv::resize(image, resized, cv::Size(width, height));  // INTER_LINEAR, as Caffe
        image = resized;
      }
      last_image = image;
      last_data = data;
      last_length = length;
      last_key[0] = color;
      last_key[1] = height;
      last_key[2] = width;
    }
    shape[0] = last_image.channels();
    shape[1] = last_image.rows;
    shape[2] = last_image.cols;
    const size_t needed = static_cast<size_t>(shape[0]) * shape[1] * shape[2];
    if (out == nullptr || capacity < needed) {
      sparknet::set_last_error("sn_decode_image: out holds " + std::to_string(capacity) +
                               " bytes, the image needs " + std::to_string(needed));
      return SN_ERR_ARGUMENT;
    }
    to_chw(last_image, static_cast<uint8_t*>(out));
    last_image.release();
    last_data = nullptr;
    return SN_OK;
  } catch (const std::exception& error) {
    sparknet::set_last_error(std::string("sn_decode_image: ") + error.what());
    return SN_ERR_INTERNAL;
  }
}
