"""Find a package's share directory (config, launch, rviz files) in both supported worlds.

On a ROS 2 distro install (colcon), files are installed to ``<prefix>/share/<package>`` and found
through the ament index. In the pip world the packages are installed editable into the venv, and
the files are read from the package's source directory.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path


def package_share(package: str) -> Path:
    """Directory holding ``package.xml`` and the ``config/``, ``launch/``, ... folders of ``package``."""
    if os.environ.get("AMENT_PREFIX_PATH"):
        try:
            from ament_index_python.packages import get_package_share_directory

            share = Path(get_package_share_directory(package))
            if (share / "package.xml").is_file():
                return share
        except (ImportError, LookupError, OSError):
            pass
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"package {package!r} is not installed (run `bash scripts/setup.sh`)")
    source = Path(spec.origin).resolve().parent.parent
    if (source / "package.xml").is_file():
        return source
    raise FileNotFoundError(f"no share directory for {package!r}: not in the ament index and "
                            f"{source} has no package.xml")
