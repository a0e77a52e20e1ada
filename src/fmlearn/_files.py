"""Writing files so that a crash never leaves half of one."""
import contextlib
import hashlib
import os
import re
import secrets
import socket

# This machine in temporary names, so that a directory shared between machines never has
# one machine take another's live temporary file for a dead process's.
_HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _alive(pid):
    """Whether process ``pid`` of this machine exists (POSIX; elsewhere always True)."""
    if os.name != "posix":
        return True  # os.kill would terminate the process on Windows
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, and another user's
        pass
    return True


def remove_stale_temporaries(path):
    """Remove the temporary files that writers of ``path`` on this machine left when they
    were killed: ``.{name}.{pid}-{host}.{token}.tmp`` whose process no longer runs.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> stale = os.path.join(folder, f".out.bin.999999999-{_HOST}.0123456789ab.tmp")
    >>> open(stale, "wb").close()
    >>> remove_stale_temporaries(os.path.join(folder, "out.bin"))
    >>> os.listdir(folder)
    []
    """
    directory, name = os.path.split(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(name)}\.(\d+)-{_HOST}\.[0-9a-f]{{12}}\.tmp")
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            match = pattern.fullmatch(entry.name)
            if match and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def write_atomically(path, write):
    """Call ``write(file)`` on a new file next to ``path``, sync it, then rename it to ``path``.

    On any failure the temporary file is removed and ``path`` is untouched, so a
    reader sees the old file or the new one, never a part. The temporary file is
    ``.{name}.{pid}-{host}.{token}.tmp``: one that a killed writer left behind is
    removed by the next write to ``path`` on the same machine.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "out.bin")
    >>> write_atomically(path, lambda handle: handle.write(b"data"))
    >>> open(path, "rb").read()
    b'data'
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temporaries(path)
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}-{_HOST}."
                                        f"{secrets.token_hex(6)}.tmp")
    # O_EXCL: never follow or reuse an existing name; 0o666 lets the umask set the permissions.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (POSIX)
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
