"""Files in and out: libSVM/libFM and FFM text, SageMaker RecordIO-protobuf, chunked reading."""
from .errors import DataFormatError

__all__ = ["DataFormatError"]
