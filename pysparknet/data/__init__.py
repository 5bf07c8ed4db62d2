"""Data sources -> (ndarray, label) records and minibatches."""
from .bad_records import BadRecords
from .datum import (array_to_datum, datum_to_array, lmdb_key_ranges, read_datum_lmdb,
                    write_datum_lmdb)
from .images import decode_image, encode_image
from .mean import image_mean, load_binaryproto, save_binaryproto
from .minibatches import Minibatches
from .mnist import fashion_mnist, idx_dataset, read_idx
from .open_path import UnknownSourceError, has_test_split, open_data
from .spark_sources import dataframe_records, image_folder_rdd, image_list_rdd, lmdb_rdd
from .streams import StreamSource, image_folder_stream, image_list_stream, lmdb_stream

__all__ = ["BadRecords", "Minibatches", "StreamSource", "array_to_datum", "dataframe_records",
           "datum_to_array", "decode_image", "encode_image", "fashion_mnist",
           "has_test_split", "idx_dataset", "open_data", "UnknownSourceError",
           "image_folder_rdd", "image_folder_stream", "image_list_rdd", "image_list_stream",
           "image_mean", "lmdb_key_ranges", "lmdb_rdd", "lmdb_stream", "load_binaryproto",
           "read_datum_lmdb", "read_idx", "save_binaryproto", "write_datum_lmdb"]
