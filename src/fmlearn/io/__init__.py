"""Files in and out: libSVM/libFM and FFM text, SageMaker RecordIO-protobuf, chunked reading."""
from .errors import DataFormatError
from .ffm import dump_ffm, iter_ffm, load_ffm
from .libsvm import dump_libsvm, iter_libsvm, load_libsvm
from .stream import detect_format, iter_chunks, partial_fit_file, read_ahead

__all__ = ["DataFormatError", "detect_format", "dump_ffm", "dump_libsvm", "iter_chunks", "iter_ffm",
           "iter_libsvm", "load_ffm", "load_libsvm", "partial_fit_file", "read_ahead"]
