"""Tokenise libSVM / libFM (``label [qid:q] index:value ...``) and FFM (``label field:index:value ...``)
text held in a uint8 buffer.

One pass over the bytes fills preallocated arrays; the caller sizes them from
the number of newlines and colons. The kernel never raises: it returns an error
code with the line and column of the first problem, and the Python layer turns
that into a message. Numbers with at most 15 significant digits and a decimal
exponent within +-22 are converted exactly here (Clinger's fast path: both the
integer mantissa and the power of ten are exact doubles, so one division or
multiplication rounds once); any other number (more digits, a larger exponent, an
exponent too long to count) is left to Python's ``float`` via the list of "slow"
tokens, so every value is read correctly rounded and an overflow is seen as one.
"""
import numpy as np
from numba import njit
from .._numba_cache import CACHE

OK = 0
BAD_LABEL = 1
NO_COLON = 2
BAD_INDEX = 3
NEGATIVE_INDEX = 4
BIG_INDEX = 5
BAD_VALUE = 6
BAD_FIELD = 7
BAD_QID = 8
SLOW_FULL = 9
TOO_MANY_COLONS = 10

INDEX_LIMIT = np.iinfo(np.int32).max
_POW10 = np.array([10.0 ** e for e in range(23)])
_EXPONENT_CAP = 10**6  # an exponent this large is not counted further (its number goes slow)

_NL, _CR, _SPACE, _TAB, _HASH, _COLON = 10, 13, 32, 9, 35, 58


@njit(cache=CACHE, inline="always")
def _is_blank(c):
    return c == _SPACE or c == _TAB or c == _CR


@njit(cache=CACHE)
def parse_number(buf, start, end):
    """Decimal number in ``buf[start:end]``: (status, value), status 0 exact, 1 slow, 2 invalid."""
    k = start
    negative = False
    if k < end and (buf[k] == 45 or buf[k] == 43):  # '-' '+'
        negative = buf[k] == 45
        k += 1
    mantissa = np.uint64(0)
    digits = 0
    seen_digit = False
    scale = 0
    seen_point = False
    while k < end:
        c = buf[k]
        if 48 <= c <= 57:
            seen_digit = True
            if digits > 0 or c != 48:
                if digits < 19:
                    mantissa = mantissa * np.uint64(10) + np.uint64(c - 48)
                else:
                    scale += 1
                digits += 1
            if seen_point:
                scale -= 1
        elif c == 46 and not seen_point:  # '.'
            seen_point = True
        else:
            break
        k += 1
    if not seen_digit:
        return 2, 0.0
    slow = False
    if k < end and (buf[k] == 101 or buf[k] == 69):  # 'e' 'E'
        k += 1
        exp_negative = False
        if k < end and (buf[k] == 45 or buf[k] == 43):
            exp_negative = buf[k] == 45
            k += 1
        if k == end:
            return 2, 0.0
        exponent = 0
        while k < end:
            c = buf[k]
            if not 48 <= c <= 57:
                return 2, 0.0
            if exponent < _EXPONENT_CAP:
                exponent = exponent * 10 + (c - 48)
            k += 1
        slow = exponent >= _EXPONENT_CAP  # saturated: only Python's float knows the value
        scale += -exponent if exp_negative else exponent
    if k != end:
        return 2, 0.0
    if slow or digits > 15 or scale > 22 or scale < -22:
        return 1, 0.0
    value = float(mantissa)
    if scale >= 0:
        value *= _POW10[scale]
    else:
        value /= _POW10[-scale]
    return 0, -value if negative else value


@njit(cache=CACHE)
def parse_index(buf, start, end):
    """Non-negative integer in ``buf[start:end]``: (status, value); status is an error code or OK."""
    if start == end:
        return BAD_INDEX, 0
    if buf[start] == 45:
        return NEGATIVE_INDEX, 0
    value = 0
    for k in range(start, end):
        c = buf[k]
        if not 48 <= c <= 57:
            return BAD_INDEX, 0
        value = value * 10 + (c - 48)
        if value > INDEX_LIMIT:
            return BIG_INDEX, 0
    return OK, value


@njit(cache=CACHE, nogil=True)
def tokenize_sparse_text(buf, with_fields, first_line, labels, row_lines, qids, indptr, indices,
                         fields, values, slow):
    """Fill the output arrays from the lines in ``buf``; return a status tuple.

    Blank lines and ``#`` comments are skipped, ``\\r\\n`` endings accepted.
    Each row's label goes to ``labels``, its line number to ``row_lines``, its
    ``qid`` (or -1) to ``qids``; entries go to ``indices`` / ``fields`` /
    ``values`` in file order with row pointers ``indptr``. A token whose value
    needs Python's conversion is recorded in ``slow`` as (entry, start, end),
    with entry -1-r for the label of row r.

    Returns
    -------
    (n_rows, nnz, n_slow, status, line, column, token_start, token_end)
        ``status`` is OK or the first error's code, at that 1-based line and column.
    """
    n = buf.shape[0]
    pos = 0
    line = first_line
    n_rows = 0
    nnz = 0
    n_slow = 0
    indptr[0] = 0
    while pos < n:
        line_start = pos
        k = pos
        token = 0
        while True:
            while k < n and _is_blank(buf[k]):
                k += 1
            if k >= n or buf[k] == _NL or buf[k] == _HASH:
                break
            t0 = k
            colon1 = -1
            colon2 = -1
            extra_colon = False
            while k < n:
                c = buf[k]
                if c == _SPACE or c == _NL or c == _TAB or c == _CR or c == _HASH:
                    break
                if c == _COLON:
                    if colon1 < 0:
                        colon1 = k
                    elif colon2 < 0:
                        colon2 = k
                    else:
                        extra_colon = True
                k += 1
            t1 = k
            column = t0 - line_start + 1
            if token == 0:
                status, value = parse_number(buf, t0, t1)
                if status == 2:
                    return n_rows, nnz, n_slow, BAD_LABEL, line, column, t0, t1
                if status == 1:
                    if n_slow == slow.shape[0]:
                        return n_rows, nnz, n_slow, SLOW_FULL, line, column, t0, t1
                    slow[n_slow, 0] = -1 - n_rows
                    slow[n_slow, 1] = t0
                    slow[n_slow, 2] = t1
                    n_slow += 1
                labels[n_rows] = value
                qids[n_rows] = -1
                token = 1
                continue
            if (token == 1 and colon1 == t0 + 3 and colon2 < 0 and buf[t0] == 113
                    and buf[t0 + 1] == 105 and buf[t0 + 2] == 100):  # "qid:"
                status, q = parse_index(buf, colon1 + 1, t1)
                if status != OK:
                    return n_rows, nnz, n_slow, BAD_QID, line, column, t0, t1
                qids[n_rows] = q
                token = 2
                continue
            token = 2
            if colon1 < 0:
                return n_rows, nnz, n_slow, NO_COLON, line, column, t0, t1
            if extra_colon or (colon2 >= 0 and not with_fields):
                return n_rows, nnz, n_slow, TOO_MANY_COLONS, line, column, t0, t1
            if with_fields:
                if colon2 < 0:
                    return n_rows, nnz, n_slow, NO_COLON, line, column, t0, t1
                status, field = parse_index(buf, t0, colon1)
                if status != OK:
                    return n_rows, nnz, n_slow, BAD_FIELD, line, column, t0, t1
                fields[nnz] = field
                i0 = colon1 + 1
                i1 = colon2
            else:
                i0 = t0
                i1 = colon1
            status, index = parse_index(buf, i0, i1)
            if status != OK:
                return n_rows, nnz, n_slow, status, line, column, t0, t1
            status, value = parse_number(buf, i1 + 1, t1)
            if status == 2:
                return n_rows, nnz, n_slow, BAD_VALUE, line, column, t0, t1
            if status == 1:
                if n_slow == slow.shape[0]:
                    return n_rows, nnz, n_slow, SLOW_FULL, line, column, t0, t1
                slow[n_slow, 0] = nnz
                slow[n_slow, 1] = i1 + 1
                slow[n_slow, 2] = t1
                n_slow += 1
            indices[nnz] = index
            values[nnz] = value
            nnz += 1
        while k < n and buf[k] != _NL:  # a comment, to the end of the line
            k += 1
        if token > 0:
            row_lines[n_rows] = line
            n_rows += 1
            indptr[n_rows] = nnz
        pos = k + 1
        line += 1
    return n_rows, nnz, n_slow, OK, line, 0, 0, 0


@njit(cache=CACHE)
def _write_int(out, pos, value):
    if value == 0:
        out[pos] = 48
        return pos + 1
    digits = 0
    v = value
    while v > 0:
        v //= 10
        digits += 1
    for k in range(digits - 1, -1, -1):
        out[pos + k] = 48 + value % 10
        value //= 10
    return pos + digits


@njit(cache=CACHE)
def _write_text(out, pos, text, offsets, code):
    for k in range(offsets[code], offsets[code + 1]):
        out[pos] = text[k]
        pos += 1
    return pos


@njit(cache=CACHE, nogil=True)
def format_sparse_text(out, indptr, indices, index_base, fields, value_codes, label_codes, qids,
                       text, offsets):
    """Write rows as ``label [qid:q] [field:]index:value ...`` lines into ``out``; return the length.

    Labels and values are given as codes into a table of preformatted strings
    (``text[offsets[c]:offsets[c + 1]]``); ``fields`` and ``qids`` may be empty
    arrays for none. ``out`` must be large enough.
    """
    pos = 0
    with_fields = fields.shape[0] > 0
    with_qids = qids.shape[0] > 0
    for r in range(indptr.shape[0] - 1):
        pos = _write_text(out, pos, text, offsets, label_codes[r])
        if with_qids:
            out[pos] = _SPACE
            out[pos + 1] = 113
            out[pos + 2] = 105
            out[pos + 3] = 100
            out[pos + 4] = _COLON
            pos = _write_int(out, pos + 5, qids[r])
        for e in range(indptr[r], indptr[r + 1]):
            out[pos] = _SPACE
            pos += 1
            if with_fields:
                pos = _write_int(out, pos, fields[e])
                out[pos] = _COLON
                pos += 1
            pos = _write_int(out, pos, indices[e] + index_base)
            out[pos] = _COLON
            pos = _write_text(out, pos + 1, text, offsets, value_codes[e])
        out[pos] = _NL
        pos += 1
    return pos


@njit(cache=CACHE, nogil=True)
def rows_strictly_increasing(indptr, columns):
    """Whether the columns of every row are strictly increasing (sorted, no repeats)."""
    for r in range(indptr.shape[0] - 1):
        for e in range(indptr[r] + 1, indptr[r + 1]):
            if columns[e] <= columns[e - 1]:
                return False
    return True
