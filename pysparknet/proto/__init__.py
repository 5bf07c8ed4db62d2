"""caffe_pb2, generated at build time from Caffe's own caffe.proto."""
