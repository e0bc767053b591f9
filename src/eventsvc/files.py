"""Writing files that hold secrets: keys, certificates, tokens, audit exports.

One writer, so every private file is written the same way: a 0600 temporary
file beside the target, flushed to disk, then renamed over the target. A
reader sees the old file or the whole new one, never half a key, and a
failure leaves no temporary file behind.
"""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterable
from pathlib import Path


def write_private_file(path: Path, content: str | Iterable[bytes]) -> None:
    """Replace ``path`` atomically with ``content`` (text as UTF-8, or chunks of bytes), mode 0600.

    ``O_EXCL | O_NOFOLLOW`` on the temporary file: nothing already there,
    link or file, is opened or written through. A symbolic link at ``path``
    itself is refused rather than replaced: whoever put it there meant the
    data to go elsewhere, and we will not follow it. (The rename never writes
    through a link, so a link appearing after the check is replaced, not followed.)
    Raises OSError; chunks that raise stop the write and leave ``path`` as it was.
    """
    if path.is_symlink():
        raise OSError(errno.ELOOP, "refusing to replace a symbolic link", str(path))
    chunks = [content.encode("utf-8")] if isinstance(content, str) else content
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    descriptor = os.open(temporary, flags, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
