"""The one exception type raised for malformed input files."""


class DataFormatError(ValueError):
    """A data file does not hold what its format promises.

    The message names the file, the place (``line`` for text formats,
    ``record`` for RecordIO) and what was expected there. Readers raise it
    before returning anything, so a caller never gets half a file.

    Parameters
    ----------
    path : str
        The file (or a description such as ``"<stream>"`` for file objects).
    problem : str
        What is wrong and, where it helps, what was expected.
    line, record : int, optional
        The 1-based line number (text formats) or record number (RecordIO).
    column : int, optional
        The 1-based column on that line where the problem starts.

    Examples
    --------
    >>> err = DataFormatError("train.svm", "value 'abc' of feature 3 is not a number", line=7)
    >>> str(err)
    "train.svm, line 7: value 'abc' of feature 3 is not a number"
    >>> err.line
    7
    """

    def __init__(self, path, problem, *, line=None, record=None, column=None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.record = record
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        if record is not None:
            where += f", record {record}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self):
        return (_rebuild, (self.path, self.problem, self.line, self.record, self.column))


def _rebuild(path, problem, line, record, column):
    return DataFormatError(path, problem, line=line, record=record, column=column)
