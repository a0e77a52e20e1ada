"""Files in and out: libSVM/libFM and FFM text, SageMaker RecordIO-protobuf, chunked reading."""
from .criteo import iter_criteo, load_criteo
from .errors import DataFormatError
from .ffm import dump_ffm, iter_ffm, load_ffm
from .libffm_model import load_libffm_model
from .libfm_relation import LibFMRelation, load_libfm_relation
from .libsvm import dump_libsvm, iter_libsvm, load_libsvm
from .recordio import iter_recordio, load_recordio, load_recordio_bytes
from .recordio_write import dump_predictions_recordio, dump_recordio, recordio_bytes
from .stream import detect_format, iter_chunks, partial_fit_file, read_ahead

__all__ = ["DataFormatError", "LibFMRelation", "load_libfm_relation", "detect_format", "dump_ffm", "dump_libsvm", "dump_predictions_recordio",
           "dump_recordio", "iter_chunks", "iter_criteo", "iter_ffm", "iter_libsvm", "iter_recordio",
           "load_criteo", "load_ffm", "load_libffm_model", "load_libsvm", "load_recordio",
           "load_recordio_bytes", "partial_fit_file", "read_ahead", "recordio_bytes"]
