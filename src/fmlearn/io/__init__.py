"""Files in and out: libSVM/libFM and FFM text, SageMaker RecordIO-protobuf, chunked reading."""
from .errors import DataFormatError
from .ffm import dump_ffm, iter_ffm, load_ffm
from .libsvm import dump_libsvm, iter_libsvm, load_libsvm

__all__ = ["DataFormatError", "dump_ffm", "dump_libsvm", "iter_ffm", "iter_libsvm", "load_ffm",
           "load_libsvm"]
