"""Output files: checked for writability before any work, written whole or not at all.

Every file is written to a hidden temporary name in its own folder and renamed onto its name
(``os.replace``, atomic on one file system) only once it is complete, so a run that is killed or
interrupted while writing leaves the previous file (or none), never a truncated one.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path
from typing import Callable

from .errors import UserInputError


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call ``write(temporary_path)`` on a name beside ``path``, then rename that file onto ``path``.

    Parameters
    ----------
    path : path
        The file to create or replace; its folder must exist.
    write : callable
        Writes the whole content into the file named by the string it is given (``np.savetxt``,
        ``torch.save`` and ``savefig`` all take a name).

    Notes
    -----
    An interrupted or failing ``write`` (``KeyboardInterrupt`` included) leaves ``path`` as it was,
    absent or the previous file, and removes the temporary file; only a process killed outright
    (SIGKILL) can leave a hidden ``.<name>.<random>.part`` behind, never a partial ``path``. The
    new file gets the permissions of any new file (0o666 minus the umask).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> folder = tempfile.mkdtemp()
    >>> atomic_write(os.path.join(folder, "a.txt"), lambda tmp: np.savetxt(tmp, np.eye(2), fmt="%d"))
    >>> open(os.path.join(folder, "a.txt")).read()
    '1 0\\n0 1\\n'
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        open(temporary, "xb").close()  # claim the name, with the permissions of a new file (mkstemp's are 0o600)
        write(str(temporary))
        with open(temporary, "rb") as handle:  # on disk before it takes the name
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def save_text(path: str | os.PathLike, array, fmt: str = "%.6f", delimiter: str = " ") -> None:
    """``numpy.savetxt(path, array, fmt, delimiter)``, written atomically (see :func:`atomic_write`)."""
    import numpy as np

    atomic_write(path, lambda temporary: np.savetxt(temporary, array, fmt=fmt, delimiter=delimiter))


def save_numpy(path: str | os.PathLike, array) -> None:
    """``numpy.save`` to exactly ``path`` (which should end in ``.npy``), written atomically."""
    import numpy as np

    def write(temporary: str) -> None:
        with open(temporary, "wb") as handle:  # a file object: np.save would append .npy to a name
            np.save(handle, array)

    atomic_write(path, write)


def save_torch(obj, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)``, written atomically (see :func:`atomic_write`)."""
    import torch

    atomic_write(path, lambda temporary: torch.save(obj, temporary))


def _probe_folder(folder: Path, flag: str, shown: str) -> None:
    """Create and delete a file in ``folder``: the one test of writability that root, /proc and read-only mounts obey."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dgl-ltd-probe-"):
            pass
    except OSError as exc:
        raise UserInputError(f"{flag} {shown!r}: cannot write in folder {str(folder)!r} ({exc.strerror}); "
                             f"choose a writable folder") from None


def check_output_file(path: str | os.PathLike, flag: str) -> None:
    """Refuse, before any work, an output file that could not be written: a folder, a missing or unwritable folder.

    Parameters
    ----------
    path : path
        The file a command will write.
    flag : str
        The option that named it (``--save-temperatures``), for the message.
    """
    shown = str(path)
    if shown.endswith(("/", os.sep)) or Path(path).is_dir():
        raise UserInputError(f"{flag} {shown!r} is a folder; give a file name in it")
    folder = Path(path).resolve().parent
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist; create it first"
        raise UserInputError(f"{flag}: the folder of {shown!r} {what}")
    _probe_folder(folder, flag, shown)


def check_output_folder(path: str | os.PathLike, flag: str) -> None:
    """Refuse, before any work, an output folder that could not be created or written in.

    The folder itself may be missing (it is created when the first file is written); its nearest
    existing ancestor must then be a writable folder.
    """
    shown = str(path)
    target = Path(path).resolve()
    if target.exists() and not target.is_dir():
        raise UserInputError(f"{flag} {shown!r} is a file; give a folder (it is created if missing)")
    existing = target
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserInputError(f"{flag} {shown!r}: {str(existing)!r} is a file, so no folder can be made under it; "
                             f"give a folder path")
    _probe_folder(existing, flag, shown)
